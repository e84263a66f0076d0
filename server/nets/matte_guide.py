"""What the learned matte net reads: the plate, the clean plate, and the classical key as a guide.

The learned matte does not start from nothing, as the learned cleanup does not: the classical
difference key (:func:`plateforge.server.tools.matte_classical.key`, default settings) is computed
first and the net corrects it. Its one output is residual on the key's plane, so a fresh net gives
exactly the classical alpha and training (on the artist's keyframe mattes) only learns what the key
gets wrong on this shot: colours of the subject that match the set, hair, motion blur.

:func:`matte_planes` builds the :data:`MATTE_CHANNELS` planes, in this order:

====  =======================================================================================
0-2   the plate's R, G, B, scene-linear
3-5   the clean plate's R, G, B, scene-linear
6     the classical alpha in [0, 1]
====  =======================================================================================

Training (:mod:`plateforge.server.training.matting`) and the runtime
(:mod:`plateforge.server.tools.learned`) both call it; both encode every plane with
:func:`~plateforge.server.nets.unet.encode`. The net's output, decoded and clipped to [0, 1], is the alpha.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from plateforge.server.tools.matte_classical import KeySettings, key

__all__ = ["KEY_CHANNEL", "LIGHT_CHANNELS", "MATTE_CHANNELS", "matte_planes"]

#: Channels of :func:`matte_planes`.
MATTE_CHANNELS: Final = 7
#: The classical alpha's plane: the net's output is residual on it.
KEY_CHANNEL: Final = 6
#: Planes that hold light (exposure augmentation scales these only).
LIGHT_CHANNELS: Final = 6


def matte_planes(plate: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """``(H, W, 7)`` float32 planes (see the module doc) from ``plate`` and ``clean`` ``(H, W, 3)``."""
    alpha = key(plate, clean, KeySettings())
    planes = np.concatenate([plate, clean, alpha[:, :, None]], axis=2)
    return np.ascontiguousarray(planes, dtype=np.float32)
