"""What the learned cleanup net reads: the plate, the classical fill as a guide, and the masks.

The learned cleanup does not start from nothing. :func:`plateforge_server.tools.cleanup.classical.fill_plate`
first fills the mask from aligned neighbouring frames and inpaints what none shows; the net then
sees that fill beside the plate and corrects it (propagate, then refine: the shape of modern
video inpainting such as ProPainter, with classical alignment as the propagation). Its output is
residual on the fill's channels, so a fresh net gives exactly the classical result and training
only ever learns what the classical method gets wrong on this shot.

:func:`guide_planes` builds the :data:`GUIDE_CHANNELS` planes, scene-linear, in this order:

====  =======================================================================================
0-2   the plate's R, G, B zeroed where the mask is 1 (the rig must not leak through)
3-5   the classical fill where the mask is above 0, the plate elsewhere (not blended with a soft
      mask: the runtime blends the net's output once, as cleanup-classical blends its fill)
6     the mask in [0, 1]
7     1 where a neighbouring frame showed the pixel, 0 where the fill is spatial inpainting
====  =======================================================================================

Training (:mod:`plateforge_server.tools.cleanup.examples`) and the runtime
(:mod:`plateforge_server.tools.learned`) both call it, so what the net reads can never differ
between the two. Both encode all planes with :func:`~plateforge_server.nets.unet.encode`.
"""

from __future__ import annotations

from typing import Final

import numpy as np

__all__ = ["FILL_CHANNELS", "GUIDE_CHANNELS", "SHOWN_CHANNEL", "guide_planes"]

#: Channels of :func:`guide_planes`.
GUIDE_CHANNELS: Final = 8
#: The classical fill's channels: the net's output is residual on these.
FILL_CHANNELS: Final = (3, 4, 5)
#: The "a neighbouring frame showed this pixel" plane: the net's residual gate. Where it is set the
#: output is the temporal fill exactly; the net only decides what no frame shows.
SHOWN_CHANNEL: Final = 7


def guide_planes(rgb: np.ndarray, mask: np.ndarray, fill: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """``(H, W, 8)`` float32 scene-linear planes (see the module doc) from the plate ``rgb``
    ``(H, W, 3)``, the ``mask`` ``(H, W)`` in [0, 1], the classical ``fill`` ``(H, W, 3)`` and
    ``shown`` ``(H, W)`` (bool)."""
    weight = mask[:, :, None].astype(np.float32)
    # Zero in encoded space, as the inpaint nets do, so soft edges fade the same way.
    encoded = np.sign(rgb) * np.log1p(np.abs(rgb)) * (1.0 - weight)
    zeroed = np.where(weight <= 0, rgb, np.sign(encoded) * np.expm1(np.abs(encoded)))
    planes = np.concatenate([zeroed, fill, weight, shown[:, :, None].astype(np.float32)], axis=2)
    return np.ascontiguousarray(planes, dtype=np.float32)
