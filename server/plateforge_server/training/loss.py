"""The training loss: L1 plus weighted MSE and SSIM terms, on the net's encoded values, where the weight says.

``loss = L1 + mse_weight * MSE + ssim_weight * (1 - SSIM)``.

**Why an MSE term.** L1 pulls towards the median, which is right for sharp edits, but a method is
judged by PSNR, i.e. squared error. The learned cleanup's errors are a few large misses inside
holes no frame shows; L1 alone left it tied with the classical fill in PSNR, while adding
``10 * MSE`` (``mse_weight``; "cleanup" runs use that by default) made it win. Like L1, MSE is the
weighted mean over the weighted pixels, so pixels outside the holes never dilute it.

**Encoded values, not decoded-and-clipped.** Both terms compare the net's output with the target
in the encoded space (:func:`plateforge_server.nets.unet.encode`) the net works in. Decoding and
clipping to [0, 1] would give zero gradient above diffuse white -- a highlight the net gets wrong
would never be corrected -- and unclipped linear values let one bright highlight outweigh the
rest of the frame. Encoded values are close to linear below 1 and compress highlights
logarithmically, so every pixel is corrected and none dominates. SSIM's constants assume a data
range; it is 1.0 here (diffuse white encodes to 0.69, a 100x highlight to 4.6), so its
stabilisers match the shadows and midtones where structure matters most.

**Highlights, when PSNR is scene-linear.** An encoded error ``e`` at a linear value ``v`` is a
linear error of about ``e * (1 + v)``, so encoded MSE weighs a highlight's miss ``(1 + v) ** 2``
times less than scene-linear PSNR does. A relight's practical glowing at 6-10 is a few dozen
pixels holding most of the scene-linear squared error; the encoded loss barely sees it, and the
net learnt a fixture at a third of its brightness. ``mse_gain`` weights each sample's squared
error by ``(1 + v) ** mse_gain`` (``v`` the target's linear value, 0 below 0): 0 is the plain
encoded MSE, 2 the scene-linear squared error near the target; L1 and SSIM stay encoded, so
shadows and midtones keep their weight.

**Weights.** ``weight`` (``(N, 1, H, W)`` in [0, 1]) says where the loss counts: the mask of a
masked pair, or the holes when inpainting. The L1 term is the weighted mean of ``|output -
target|``. SSIM is a windowed statistic and cannot skip pixels, so it is taken on the composite
``target + weight * (output - target)``: outside the weight the composite *is* the target (SSIM 1,
no gradient), inside it is the output.

SSIM is pytorch-msssim's (Gaussian window 11, sigma 1.5, "valid" filtering); crops smaller than
the window use the largest odd window that fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pytorch_msssim import ssim  # type: ignore[import-untyped,unused-ignore]

__all__ = ["LossTerms", "training_loss"]

#: SSIM's data range on encoded values (see the module doc).
DATA_RANGE = 1.0
_WINDOW = 11


@dataclass(frozen=True)
class LossTerms:
    """The loss to minimise and its parts (the parts detached, for logging)."""

    total: torch.Tensor
    l1: float
    ssim: float


def training_loss(
    output: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    *,
    ssim_weight: float,
    mse_weight: float = 0.0,
    mse_gain: float = 0.0,
) -> LossTerms:
    """``L1 + mse_weight * MSE + ssim_weight * (1 - SSIM)`` of ``output`` against ``target`` (both
    ``(N, C, H, W)`` encoded) where ``weight`` (``(N, 1, H, W)``) says; float32 whatever the autocast
    dtype. With ``mse_gain`` the MSE of each sample is weighted by ``(1 + max(target, 0)) ** mse_gain``,
    ``target`` scene-linear (see the module doc)."""
    output, target, weight = output.float(), target.float(), weight.float()
    expanded = weight.expand_as(output)
    total_weight = expanded.sum().clamp_min(1.0)
    l1 = (expanded * (output - target).abs()).sum() / total_weight
    total = l1
    if mse_weight > 0:
        squared = (output - target).square()
        if mse_gain > 0:  # 1 + linear == exp(|encoded|) for positive values
            squared = squared * torch.exp(mse_gain * target.clamp_min(0.0))
        total = total + mse_weight * (expanded * squared).sum() / total_weight
    similarity = torch.ones((), device=output.device)
    if ssim_weight > 0:
        side = min(output.shape[-2:])
        window = min(_WINDOW, side if side % 2 == 1 else side - 1)
        composite = target + weight * (output - target)
        similarity = ssim(composite, target, data_range=DATA_RANGE, size_average=True, win_size=max(window, 1))
        total = total + ssim_weight * (1.0 - similarity)
    return LossTerms(total=total, l1=float(l1.detach()), ssim=float(similarity.detach()))
