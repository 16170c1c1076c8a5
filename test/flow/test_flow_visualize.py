"""flow_to_color against the Middlebury colour-wheel definition (Baker et al., 2011)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kestrel_core.flow import flow_to_color, make_color_wheel

# The definition, spelled out: segment lengths and the hues at the segment starts.
SEGMENTS = [15, 6, 4, 11, 13, 6]  # RY, YG, GC, CB, BM, MR
STARTS = {0: (255, 0, 0), 15: (255, 255, 0), 21: (0, 255, 0), 25: (0, 255, 255), 36: (0, 0, 255), 49: (255, 0, 255)}


def _expected(u: float, v: float, max_flow: float) -> np.ndarray:
    """Colour of one flow vector, computed from the definition with plain floats."""
    wheel = make_color_wheel()
    angle = math.atan2(-v, -u) / math.pi
    position = (angle + 1) / 2 * (len(wheel) - 1)
    k0 = math.floor(position)
    k1 = (k0 + 1) % len(wheel)
    frac = position - k0
    radius = math.hypot(u, v) / max_flow
    out = []
    for channel in range(3):
        col = ((1 - frac) * wheel[k0, channel] + frac * wheel[k1, channel]) / 255
        col = 1 - radius * (1 - col) if radius <= 1 else col * 0.75
        out.append(math.floor(255 * col))
    return np.array(out, np.uint8)


def test_the_wheel_follows_its_definition():
    wheel = make_color_wheel()
    assert wheel.shape == (sum(SEGMENTS), 3) == (55, 3)
    for index, rgb in STARTS.items():
        assert tuple(wheel[index]) == rgb
    # inside a segment exactly one channel moves, by floor(255 i / n)
    assert tuple(wheel[5]) == (255, math.floor(255 * 5 / 15), 0)  # red -> yellow
    assert tuple(wheel[17]) == (255 - math.floor(255 * 2 / 6), 255, 0)  # yellow -> green
    assert tuple(wheel[30]) == (0, 255 - math.floor(255 * 5 / 11), 255)  # cyan -> blue
    assert tuple(wheel[54]) == (255, 0, 255 - math.floor(255 * 5 / 6))  # magenta -> red, last step


def test_zero_flow_is_white():
    image = flow_to_color(np.zeros((4, 5, 2), np.float32))
    assert image.shape == (4, 5, 3) and image.dtype == np.uint8
    assert (image == 255).all()


def test_directions_at_full_magnitude():
    # right, left, down, up, and a diagonal, all of length 2 = the maximum
    vectors = [(2.0, 0.0), (-2.0, 0.0), (0.0, 2.0), (0.0, -2.0), (math.sqrt(2), math.sqrt(2))]
    flow = np.array(vectors, np.float64).reshape(1, len(vectors), 2)
    image = flow_to_color(flow)
    assert tuple(image[0, 0]) == (255, 0, 0)  # +x: the start of the red -> yellow segment
    for index, (u, v) in enumerate(vectors):
        np.testing.assert_array_equal(image[0, index], _expected(u, v, 2.0))
    # left is wheel entry 27 exactly (in the cyan -> blue segment)
    assert tuple(image[0, 1]) == tuple(make_color_wheel()[27].astype(np.uint8)) == (0, 209, 255)


def test_saturation_follows_the_magnitude_and_max_flow():
    flow = np.array([[[1.0, 0.0], [0.5, 0.0], [0.0, 0.0], [4.0, 0.0]]])
    image = flow_to_color(flow, max_flow=2.0)
    assert tuple(image[0, 0]) == (255, 127, 127)  # half way to red: 255 * (1 - 0.5)
    assert tuple(image[0, 1]) == (255, 191, 191)  # a quarter: floor(255 * 0.75)
    assert tuple(image[0, 2]) == (255, 255, 255)
    assert tuple(image[0, 3]) == (191, 0, 0)  # beyond max_flow: 75 % of red
    # by default the largest magnitude is fully saturated
    assert tuple(flow_to_color(flow)[0, 3]) == (255, 0, 0)


def test_layouts_tensors_and_unknown_flow():
    rng = np.random.default_rng(0)
    flow = rng.normal(size=(6, 7, 2)).astype(np.float32)
    flow[2, 3] = np.nan
    reference = flow_to_color(flow)
    assert tuple(reference[2, 3]) == (0, 0, 0)
    np.testing.assert_array_equal(flow_to_color(np.moveaxis(flow, -1, 0)), reference)
    np.testing.assert_array_equal(flow_to_color(torch.from_numpy(flow).permute(2, 0, 1)), reference)
    # the sign of a zero never changes the colour
    signed = np.array([[[1.0, 0.0], [1.0, -0.0]]])
    assert tuple(flow_to_color(signed)[0, 0]) == tuple(flow_to_color(signed)[0, 1])


@pytest.mark.parametrize("bad", [np.zeros((4, 5)), np.zeros((4, 5, 3)), np.zeros((2, 5, 2))])
def test_bad_shapes_are_rejected(bad):
    with pytest.raises(ValueError):
        flow_to_color(bad)
    with pytest.raises(ValueError):
        flow_to_color(np.zeros((3, 3, 2)), max_flow=0.0)
