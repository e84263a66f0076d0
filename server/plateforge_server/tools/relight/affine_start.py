"""A pairs net that starts as the classical transform: the fitted 3x4 affine, then a UNet correcting it.

relight-classical fits one global colour transform on the key pairs
(:func:`plateforge_server.tools.relight.classical.fit_transform`). A learned relight or look that
starts as the identity must first relearn that global change before it can learn the local one
(the light's falloff, the practical's pool), and its untrained state is worse than the classical
tool. :class:`AffineUNet` holds the affine fitted on the run's own key pairs as a buffer (saved with
the weights, so the served model applies exactly what training saw) and feeds its UNet the
classical result, encoded, before the plate's own channels; the output is residual on that
result and the head starts at zero. So:

* step 0 *is* relight-classical's affine on every pixel: model selection
  (:mod:`plateforge_server.training.selection`) scores the classical tool as the untrained net and
  publishes it when no checkpoint beats it on the held-back key pair;
* the net learns only what no global transform can do.

The affine is applied per pixel, so the net still tiles exactly (:mod:`plateforge_server.inference.tiling`).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import torch

from plateforge.errors import FrameError
from plateforge_server.nets.unet import UNet, UNetConfig, decode, encode

__all__ = ["AFFINE_KEY", "ARCH", "AffineUNet", "affine_config"]

#: NetSpec.arch of these nets.
ARCH: Final = "affine-unet"
#: The state-dict key of the affine buffer.
AFFINE_KEY: Final = "classical_affine"


def affine_config(config: UNetConfig) -> UNetConfig:
    """Check that ``config`` reads the classical R, G, B first and is residual on them."""
    if config.in_channels < 6 or config.out_channels != 3 or config.residual_from != (0, 1, 2):
        raise FrameError(
            f"an {ARCH} net reads the classical R, G, B then the plate's channels (at least 6) and writes 3 "
            f"residual on channels (0, 1, 2); got {config.in_channels} -> {config.out_channels} residual on "
            f"{config.residual_from}"
        )
    return config


class AffineUNet(UNet):
    """``(N, C, H, W)`` encoded plate channels (R, G, B first) -> ``(N, 3, H, W)`` encoded R, G, B:
    the UNet (``config.in_channels == C + 3``) reading the fitted affine's result and the plate."""

    def __init__(self, config: UNetConfig, *, seed: int = 0, affine: np.ndarray | None = None) -> None:
        super().__init__(affine_config(config), seed=seed)
        matrix = np.eye(3, 4) if affine is None else np.asarray(affine, np.float64)
        if matrix.shape != (3, 4) or not np.isfinite(matrix).all():
            raise FrameError(f"the classical affine must be a finite 3x4 matrix; got shape {matrix.shape}")
        self.register_buffer(AFFINE_KEY, torch.tensor(matrix, dtype=torch.float32))

    @property
    def plate_channels(self) -> int:
        """How many plate channels the net reads (R, G, B and any AOVs)."""
        return self.config.in_channels - 3

    def classical(self, x: torch.Tensor) -> torch.Tensor:
        """The affine on the plate's R, G, B: encoded ``(N, C, H, W)`` in, encoded ``(N, 3, H, W)`` out."""
        affine: torch.Tensor = getattr(self, AFFINE_KEY)
        linear = decode(x[:, :3].float())
        mapped = torch.einsum("ck,nkhw->nchw", affine[:, :3], linear) + affine[:, 3].view(1, 3, 1, 1)
        return encode(mapped).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.plate_channels:
            raise FrameError(f"{ARCH} expects (N, {self.plate_channels}, H, W); got shape {tuple(x.shape)}")
        return super().forward(torch.cat([self.classical(x), x], dim=1))
