"""Reduced-size flow and the forward-backward consistency check."""

import numpy as np

from kestrel_core.flow.consistency import occlusion_mask
from kestrel_core.flow.resize import resize_flow, working_size


def test_working_size_limits_the_width_and_keeps_the_aspect_ratio():
    assert working_size(640, 480, 0) == (640, 480)
    assert working_size(640, 480, 800) == (640, 480)
    assert working_size(640, 480, 320) == (320, 240)
    assert working_size(741, 500, 370) == (370, 250)


def test_resized_flow_is_in_pixels_of_the_new_size():
    small = np.broadcast_to(np.float32([1.5, -0.5]), (60, 80, 2)).copy()
    big = resize_flow(small, 160, 150)
    assert big.shape == (150, 160, 2) and big.dtype == np.float32
    np.testing.assert_allclose(big[..., 0], 3.0, rtol=1e-6)
    np.testing.assert_allclose(big[..., 1], -1.25, rtol=1e-6)


def test_forward_backward_check_marks_inconsistent_and_outgoing_pixels():
    forward = np.broadcast_to(np.float32([2.0, 0.0]), (20, 30, 2)).copy()
    backward = -forward
    occluded = occlusion_mask(forward, backward, threshold=0.5)
    # Consistent everywhere except where x + 2 leaves the image (the last two columns).
    assert not occluded[:, :28].any() and occluded[:, 28:].all()
    # A backward flow that does not undo the forward one: all occluded.
    assert occlusion_mask(forward, np.zeros_like(forward), threshold=0.5).all()
    # Half a pixel of disagreement is within a threshold of 1 but not of 0.25.
    backward[..., 1] = 0.5
    assert not occlusion_mask(forward, backward, threshold=1.0)[:, :28].any()
    assert occlusion_mask(forward, backward, threshold=0.25).all()
    # Non-finite forward flow is never consistent.
    forward[3, 4] = np.nan
    assert occlusion_mask(forward, -forward, threshold=0.5)[3, 4]
