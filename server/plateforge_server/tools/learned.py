"""The runtime of a trained model: a model folder served as a tool.

A trained model is a folder holding ``model.safetensors`` and ``card.json`` (see
:mod:`plateforge_server.modelcard`). :func:`tool_module_for` turns such a folder into a
:class:`~plateforge_server.tools.base.ToolModule`, so the registry serves it like a built-in tool:

* ``INFO`` is the card's :meth:`~plateforge_server.modelcard.ModelCard.to_model_info`: the inputs,
  outputs and parameters the card declares, with its lineage as the provenance summary.
* ``load(device=...)`` proves the weights are the ones the card describes
  (:func:`~plateforge_server.modelcard.verify_model`: a changed file is refused, naming it), builds
  the net from the card's config and loads the weights into it.
* ``run(state, call)`` runs the net over the plate's R, G, B (and any AOV channels the card's
  ``plate`` input declares after them: ``pairs`` training with ``input_channels``) in overlapping tiles
  (:func:`~plateforge_server.inference.tiling.run_on_frame_arrays`; a cancelled call stops between
  batches of tiles) and writes the result into the plate's R, G, B, in each channel's own pixel
  type. Every other channel (A, Z, AOVs) passes through untouched.

Models whose net is ``affine-unet`` are learned relights or looks trained with ``classical_start``
(:mod:`plateforge_server.tools.relight.affine_start`): the net itself applies the 3x4 colour transform
relight-classical fitted on the training pairs (held in its weights) and corrects it; they run as
above. One whose card says ``selected_step`` 0 is that fitted transform exactly (no checkpoint
beat it on the held-back pair).

Models whose net is ``guided-unet`` are learned cleanups (``mode="cleanup"`` in training): the
classical cleanup first aligns the neighbouring frames the call brings and fills the mask from
them (:func:`~plateforge_server.tools.cleanup.classical.fill_plate`), and the net corrects that
fill, reading :func:`~plateforge_server.tools.cleanup.guide.guide_planes` exactly as in training; the
result is composited back with the soft mask as cleanup-classical does.

Models whose net is ``matte-unet`` are learned mattes (``mode="matte"`` in training): the classical
difference key (:func:`~plateforge_server.tools.matte.classical.key`) is pulled first and the net
corrects it, reading :func:`~plateforge_server.tools.matte.guide.matte_planes` exactly as in
training; inside the key's unknown band the net's alpha is taken, outside it the key stands
(:func:`~plateforge_server.tools.matte.guide.merge`); the foreground and composite are then made as
matte-classical makes them: the signed premultiplied foreground, the subject's shadow and bounce on
the set included (:func:`~plateforge_server.tools.matte.classical.solve_foreground`).

Other models whose card declares a ``mask`` input are inpainting nets (``mode="inpaint"`` in training):
the net reads the plate's R, G, B zeroed under the mask plus the mask itself, exactly as the
training batches were built (the encoded plate is multiplied by ``1 - mask``), and the result is
composited back with the soft mask, ``plate * (1 - mask) + net * mask``: pixels where the mask is
0 pass through bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from plateforge.calls import Precision
from plateforge.errors import FrameError, ModelIntegrityError, UsageError
from plateforge.frames import Frame, mask_channel_name
from plateforge.modelcards import CARD_FILE, WEIGHTS_FILE
from plateforge.models import ModelInfo
from plateforge_server.inference.tiling import run_on_frame_arrays
from plateforge_server.modelcard import ModelCard, load_card, load_weights, verify_model
from plateforge_server.nets.unet import UNet, UNetConfig
from plateforge_server.tools.base import Compute, ToolCall, ToolModule, cast_like, passthrough_channels
from plateforge_server.tools.cleanup.guide import FILL_CHANNELS, GUIDE_CHANNELS
from plateforge_server.tools.interface import learned_tools, serving_tool
from plateforge_server.tools.relight.affine_start import ARCH as AFFINE_ARCH

__all__ = [
    "LearnedState",
    "check_plate_net",
    "mask_of",
    "net_compute",
    "net_config_of",
    "plate_channels",
    "run_net",
    "run_plain",
    "tool_module_for",
]

_RGB = ("R", "G", "B")
#: Tile side for inference: large enough that the overlap (twice the receptive field) is a
#: small share of each tile, small enough that a 4K frame never becomes one huge activation.
_TILE = 512


@dataclass(frozen=True)
class LearnedState:
    """What ``load`` builds: the net in eval mode on its device, and what the registry needs."""

    card: ModelCard
    net: UNet
    device: str
    #: Bytes of the net's parameters and buffers: what the registry counts against its budget.
    parameter_bytes: int


def net_config_of(card: ModelCard, *, source: str) -> UNetConfig:
    """The UNet config a card describes, checked by the learned tool that serves it
    (:func:`~plateforge_server.tools.interface.serving_tool`) against the inputs and outputs it declares.

    Anything that could not run is a :class:`ModelIntegrityError` naming ``source`` (the card).
    """
    tool = serving_tool(card)
    if tool is None:
        raise ModelIntegrityError(f"'{source}': net {card.net.arch!r} is not one this server runs ({_archs()})")
    try:
        config = UNetConfig.from_dict(card.net.config)
    except (UsageError, TypeError) as exc:
        raise ModelIntegrityError(f"'{source}': its net config cannot be built: {exc}") from None
    return tool.check_net(card, config, source=source)


def _archs() -> list[str]:
    """The net architectures the learned tools serve, for error messages."""
    return sorted({arch for tool in learned_tools() for arch in tool.archs})


def check_plate_net(card: ModelCard, config: UNetConfig, *, source: str) -> UNetConfig:
    """``config`` checked for a net that reads the plate (and a mask): the pairs, inpaint and
    guided cleanup nets' common contract; :class:`ModelIntegrityError` naming ``source`` otherwise."""
    names = [spec.name for spec in card.inputs]
    if "plate" not in names:
        raise ModelIntegrityError(f"'{source}' declares inputs {names}; a learned model needs a 'plate' input")
    unknown = sorted(set(names) - {"plate", "mask"})
    if unknown:
        raise ModelIntegrityError(f"'{source}' declares input(s) {unknown}; this runtime feeds only 'plate' and 'mask'")
    guided = card.net.arch == "guided-unet"
    fits_guide = "mask" in names and config.in_channels == GUIDE_CHANNELS and config.residual_from == FILL_CHANNELS
    if guided and not fits_guide:
        raise ModelIntegrityError(
            f"'{source}': a guided-unet needs inputs 'plate' and 'mask' and a net reading {GUIDE_CHANNELS} "
            f"channels residual on {list(FILL_CHANNELS)}; it has inputs {names}, {config.in_channels} channels, "
            f"residual on {config.residual_from}"
        )
    declared = plate_channels(card.to_model_info())
    if (not guided and tuple(declared[:3]) != _RGB) or ("mask" in names and len(declared) != 3):
        raise ModelIntegrityError(
            f"'{source}': its 'plate' input declares channels {list(declared)}; a learned model reads R, G, B "
            "first (then, without a mask input, any AOV channels it was trained on)"
        )
    affine = card.net.arch == AFFINE_ARCH
    if affine and "mask" in names:
        raise ModelIntegrityError(f"'{source}': an {AFFINE_ARCH} net reads the plate alone; it declares inputs {names}")
    # An affine-unet also reads the classical result it computes from the plate (3 channels more).
    expected = GUIDE_CHANNELS if guided else 4 if "mask" in names else len(declared) + (3 if affine else 0)
    if config.in_channels != expected or config.out_channels != 3:
        read = ", ".join(declared) + (", mask" if "mask" in names else "")
        raise ModelIntegrityError(
            f"'{source}': the net reads {config.in_channels} and writes {config.out_channels} channels; with inputs "
            f"{names} it must read {expected} ({'guide planes' if guided else read}) and write 3 (R, G, B)"
        )
    if "image" not in [spec.name for spec in card.outputs]:
        raise ModelIntegrityError(f"'{source}' declares no 'image' output")
    return config


def tool_module_for(folder: Path) -> ToolModule:
    """The model in ``folder`` (``model.safetensors`` + ``card.json``) as a tool module.

    Reads and checks the card now (cheap: the weights are not hashed); a folder whose card is
    missing, damaged, disagrees with the weights file's own card or describes a net this runtime
    cannot build raises :class:`ModelIntegrityError` naming the file. The weights are hashed and
    read only by ``load``.
    """
    folder = Path(folder)
    card_file = folder / CARD_FILE
    card = load_card(folder)
    if card.net.arch == "diffusers-inpaint":  # a generative model: its own runtime
        from plateforge_server.generative import inpaint

        return inpaint.tool_module_for(folder, card)
    if card.weights_sha256 is None:  # read_model_card refuses this already; kept for the type
        raise ModelIntegrityError(f"'{card_file}' records no weights_sha256")
    config = net_config_of(card, source=str(card_file))
    tool = serving_tool(card)
    assert tool is not None  # net_config_of refused the card otherwise
    info = card.to_model_info()
    recorded = card.weights_sha256

    def load(*, device: str) -> LearnedState:
        verified = verify_model(folder)
        if verified.weights_sha256 != recorded:
            raise ModelIntegrityError(
                f"'{card_file}' has changed since the server read it (weights_sha256 {verified.weights_sha256}, "
                f"served as {recorded}); refresh the registry to serve the new model"
            )
        tensors = load_weights(folder, device="cpu")
        net = tool.build_net(card, config)
        try:
            net.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            weights = folder / WEIGHTS_FILE
            raise ModelIntegrityError(f"'{weights}' does not fit the net its card describes: {exc}") from None
        net.to(device).eval()
        size = sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers()))
        return LearnedState(card=verified, net=net, device=device, parameter_bytes=int(size))

    def run(state: LearnedState, call: ToolCall) -> dict[str, Frame]:
        return tool.run(info, state.net, state.device, call)

    return ToolModule(info=info, load=load, run=run, compute=net_compute)


def net_compute(*, device: str, precision: Precision) -> Compute:
    """A net runs on the server's device: under fp16 autocast on a GPU unless fp32 is asked for."""
    return Compute(device, "fp16" if device.startswith("cuda") and precision != "fp32" else "fp32")


def mask_of(call: ToolCall, plate: Frame, info: ModelInfo) -> np.ndarray:
    """The mask for the plate's frame as ``(H, W)`` float32 in [0, 1] (NaN counts as 0)."""
    frame = call.frame("mask", plate.frame_number)
    if frame.data_window != plate.data_window:
        raise FrameError(
            f"model {info.name!r}: mask {frame.label()} data window {frame.data_window} differs from the "
            f"plate's {plate.data_window}"
        )
    pixels = frame.channels[mask_channel_name(frame.channels)]
    mask: np.ndarray = np.clip(np.nan_to_num(pixels.astype(np.float32), nan=0.0), 0.0, 1.0)
    return mask


def _zeroed(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``rgb`` zeroed under ``mask`` as training did it: the *encoded* values times ``1 - mask``.

    Training multiplies encoded planes (``sign(x) * log1p(|x|)``) by ``1 - hole``; the tiling
    encodes what it is given, so the linear planes handed over are the decoded product. Where the
    mask is 0 the plate is handed over unchanged, where it is 1 it is 0.
    """
    keep = (1.0 - mask)[:, :, None].astype(np.float32)
    encoded = np.sign(rgb) * np.log1p(np.abs(rgb)) * keep
    zeroed = np.sign(encoded) * np.expm1(np.abs(encoded))
    result: np.ndarray = np.where(keep >= 1.0, rgb, zeroed).astype(np.float32)
    return result


def run_net(net: UNet, device: str, planes: np.ndarray, call: ToolCall) -> np.ndarray:
    """The net over ``(H, W, C)`` linear planes in tiles, fp16 on CUDA unless the call asks for
    fp32; ``(H, W, 3)`` float32 back."""
    result = run_on_frame_arrays(
        net,
        planes,
        tile=_TILE,
        device=device,
        dtype=torch.float16 if net_compute(device=device, precision=call.precision).precision == "fp16" else None,
        cancelled=call.cancelled.is_set,
    )
    call.check_cancelled()
    return result


def plate_channels(info: ModelInfo) -> tuple[str, ...]:
    """The plate channels the net reads, in order: the card's declaration (R, G, B if it names none)."""
    declared = next((spec.channels for spec in info.inputs if spec.name == "plate"), ())
    return tuple(declared) or _RGB


def run_plain(info: ModelInfo, net: UNet, device: str, call: ToolCall) -> dict[str, Frame]:
    """A plain net's outputs (pairs, inpaint): the net over the plate (zeroed under the mask, with
    the mask, for an inpainting net), written into the plate's R, G, B; see the module doc."""
    call.check_cancelled()
    plate = call.frame("plate")
    rgb = plate.stack(_RGB)
    channels = plate_channels(info)
    masked = call.has("mask")
    if "mask" in [spec.name for spec in info.inputs] and not masked:
        raise FrameError(f"model {info.name!r} needs a 'mask' input")
    mask = mask_of(call, plate, info) if masked else None
    if mask is not None and not bool((mask > 0).any()):
        return {"image": passthrough_channels(plate, {})}  # nothing to fill
    if mask is not None:
        planes = np.concatenate([_zeroed(rgb, mask), mask[:, :, None]], axis=2)
    else:  # R, G, B and the AOVs it was trained with (the server checked the plate has them)
        planes = rgb if channels == _RGB else plate.stack(channels)
    result = run_net(net, device, planes, call)
    if mask is not None:
        weight = mask[:, :, None]
        result = rgb * (1.0 - weight) + result * weight
        inside = mask > 0
    produced: dict[str, np.ndarray] = {}
    for k, name in enumerate(_RGB):
        original = plate.channels[name]
        values = cast_like(result[:, :, k], original)
        produced[name] = values if mask is None else np.where(inside, values, original)
    return {"image": passthrough_channels(plate, produced)}
