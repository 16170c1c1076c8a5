"""Real optical-flow ground truth from a rectified stereo pair (Middlebury 2014 Motorcycle).

For a rectified pair the flow from the left to the right image is ``(u, v) = (-d, 0)``
with ``d`` the ground-truth disparity: here up to 60 px, a hard case for Lucas-Kanade.
The numbers are printed (``pytest -s``); only loose sanity bounds are asserted.
"""

from __future__ import annotations

import numpy as np
import pytest

from kestrel_core.flow import (
    FarnebackConfig,
    LKConfig,
    dense_lucas_kanade,
    flow_epe,
    flow_outlier_rate,
    opencv_dis_flow,
    opencv_farneback_flow,
)

# Tuned on this pair: the full 6 levels the image allows (1/32 at the top) and more
# iterations than the default, which lets the consistent linearisation settle.
MOTORCYCLE_LK = LKConfig(levels=6, window=15, iterations=8, finest_iterations=8)
# OpenCV's Farneback stops its pyramid at 32 px, i.e. at 1/8 here with the default 0.5 scale
LARGE_MOTION_FARNEBACK = FarnebackConfig(pyramid_scale=0.8, levels=20)


@pytest.fixture(scope="module")
def stereo_flow(motorcycle_pair):
    left, right, disparity = motorcycle_pair
    known = np.isfinite(disparity)
    gt = np.stack((-np.where(known, disparity, np.nan), np.where(known, 0.0, np.nan)), axis=-1)
    assert known.mean() > 0.9 and np.nanmax(disparity) > 55
    return left, right, gt


def test_lucas_kanade_on_motorcycle_as_flow(stereo_flow, device):
    left, right, gt = stereo_flow
    flow = dense_lucas_kanade(left, right, MOTORCYCLE_LK, device)
    assert flow.shape == (2, *gt.shape[:2])
    lk_epe = flow_epe(flow, gt)
    lk_fl = flow_outlier_rate(flow, gt)
    results = {"LK " + str(MOTORCYCLE_LK): (lk_epe, lk_fl)}
    for preset in ("medium", "fast", "ultrafast"):
        dis = opencv_dis_flow(left, right, preset)
        results[f"DIS {preset}"] = (flow_epe(dis, gt), flow_outlier_rate(dis, gt))
    for name, config in (("default", FarnebackConfig()), ("scale 0.8, 20 levels", LARGE_MOTION_FARNEBACK)):
        farneback = opencv_farneback_flow(left, right, config)
        results[f"Farneback {name}"] = (flow_epe(farneback, gt), flow_outlier_rate(farneback, gt))
    print()
    for name, (epe, outliers) in results.items():
        print(f"Motorcycle-as-flow  {name:75s} EPE {epe:6.2f} px   >3px {100 * outliers:5.1f} %")
    # sanity only: LK works at all on 60 px motions, and the vertical flow stays small
    assert np.isfinite(lk_epe) and lk_epe < 10.0
    assert lk_fl < 0.6
    assert float(flow[1].abs().median()) < 1.0
