"""Colour coding of optical flow with the Middlebury colour wheel (Baker et al., 2011).

The wheel is a closed path through six hues, sampled with as many steps per segment as
the human eye distinguishes shades along it::

    red -> yellow (15) -> green (6) -> cyan (4) -> blue (11) -> magenta (13) -> red (6)

The direction of a flow vector picks the hue, its magnitude (relative to a maximum) the
saturation: zero flow is white and a flow of the maximum magnitude is the fully
saturated wheel colour. Flow longer than the maximum is darkened to 75 %.
"""

from __future__ import annotations

import numpy as np

from kestrel_core.flow.layout import as_hw2

__all__ = ["make_color_wheel", "flow_to_color", "WHEEL_SEGMENTS"]

# (name, number of steps) of each segment, from one hue to the next.
WHEEL_SEGMENTS = (
    ("RY", 15),  # red -> yellow: green rises
    ("YG", 6),  # yellow -> green: red falls
    ("GC", 4),  # green -> cyan: blue rises
    ("CB", 11),  # cyan -> blue: green falls
    ("BM", 13),  # blue -> magenta: red rises
    ("MR", 6),  # magenta -> red: blue falls
)


def make_color_wheel() -> np.ndarray:
    """The ``(55, 3)`` float64 RGB colour wheel, values in ``[0, 255]``.

    Each segment of ``n`` steps starts at its first hue and moves one channel by
    ``floor(255 * i / n)``, ``i = 0 .. n-1``, towards the next hue; the last step of the
    magenta -> red segment is followed again by pure red.
    """
    rows = []
    for name, steps in WHEEL_SEGMENTS:
        ramp = np.floor(255.0 * np.arange(steps) / steps)
        full = np.full(steps, 255.0)
        zero = np.zeros(steps)
        rows.append(
            {
                "RY": (full, ramp, zero),
                "YG": (255.0 - ramp, full, zero),
                "GC": (zero, full, ramp),
                "CB": (zero, 255.0 - ramp, full),
                "BM": (ramp, zero, full),
                "MR": (full, zero, 255.0 - ramp),
            }[name]
        )
    return np.concatenate([np.stack(channels, axis=1) for channels in rows])


_WHEEL = make_color_wheel()


def flow_to_color(flow: object, max_flow: float | None = None) -> np.ndarray:
    """Render a flow field as an RGB image with the Middlebury colour wheel.

    The hue comes from the angle ``atan2(-v, -u)`` mapped linearly onto the 55 wheel
    entries (interpolating between neighbours), so flow to the right (+x) is red, down
    (+y, image rows) is yellow-orange, left is cyan-blue and up is violet. The colour
    is then blended with white in proportion ``1 - |flow| / max_flow``.

    Args:
        flow: ``(H, W, 2)`` or ``(2, H, W)`` flow ``(u, v)`` in pixels, numpy or torch.
        max_flow: magnitude drawn fully saturated (> 0). By default the largest finite
            magnitude in ``flow`` (a field of zeros is all white). Longer vectors are
            drawn at 75 % brightness.

    Returns:
        ``(H, W, 3)`` uint8 RGB image (convert to BGR for ``cv2.imwrite``). Pixels with
        non-finite flow are black.
    """
    hw2 = as_hw2(flow).astype(np.float64)
    u, v = hw2[..., 0], hw2[..., 1]
    known = np.isfinite(u) & np.isfinite(v)
    u = np.where(known, u, 0.0)
    v = np.where(known, v, 0.0)
    radius = np.hypot(u, v)
    if max_flow is None:
        scale = float(radius.max()) if radius.size else 0.0
    else:
        if not (np.isfinite(max_flow) and max_flow > 0):
            raise ValueError(f"max_flow must be a positive number, got {max_flow!r}")
        scale = float(max_flow)
    radius = radius / scale if scale > 0 else radius

    count = _WHEEL.shape[0]
    # "+ 0.0" turns -0.0 into +0.0 before negating, so the colour never depends on the sign
    # of a zero: v = 0, u > 0 always gives atan2(-0.0, -u) = -pi, the start of the wheel
    angle = np.arctan2(-(v + 0.0), -(u + 0.0)) / np.pi  # in [-1, 1]
    position = (angle + 1.0) / 2.0 * (count - 1)
    k0 = np.floor(position).astype(np.int64)
    k1 = (k0 + 1) % count
    frac = (position - k0)[..., None]
    colour = ((1.0 - frac) * _WHEEL[k0] + frac * _WHEEL[k1]) / 255.0
    r = radius[..., None]
    colour = np.where(r <= 1.0, 1.0 - r * (1.0 - colour), colour * 0.75)
    image = np.floor(255.0 * colour).astype(np.uint8)
    image[~known] = 0
    return image
