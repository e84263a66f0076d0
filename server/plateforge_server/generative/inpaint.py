"""Generative fill: a diffusers inpainting pipeline from a local, licensed folder, served as a model.

A served generative model is an ordinary model folder (``card.json`` + ``model.safetensors``,
see :mod:`plateforge_server.modelcard`) whose card's net is :data:`ARCH` with config::

    {"pipeline": "/models/base/sd-inpaint",   # the pipeline folder (relative: to the model folder)
     "encoding": "reinhard-srgb/1",           # see encode_linear
     "lora": null}                            # or {"rank": 4, "alpha": 4, "target_modules": [...]}

and whose ``base_model`` names the pipeline, its licence and its hash
(:attr:`~plateforge_server.generative.folder.VerifiedPipeline.sha256`). ``model.safetensors``
holds the LoRA adapter's weights (none for a base model served as it is), and its metadata the
card, so the model hash that every output records covers the base model's hash too.

``load`` proves the model folder (:func:`~plateforge_server.modelcard.verify_model`) and the
pipeline folder (:func:`~plateforge_server.generative.folder.verify_pipeline_folder`: licence
permitting ``infer``, every file's hash) and that the pipeline is the one the card names, then
loads it with ``local_files_only=True``: nothing is ever downloaded.

``run`` encodes the plate's scene-linear R, G, B to the model's display-referred [0, 1]
(:func:`encode_linear`; the pipeline maps that to [-1, 1] itself), runs the pipeline over the
frame in overlapping tiles with a feathered blend (:func:`~plateforge_server.inference.tiling.run_tiled`;
tiles with no mask are not diffused), decodes back to scene-linear and composites with the soft
mask: pixels where the mask is 0 are the plate's, bit for bit. Every output carries the base model,
its licence and hash and the encoding in its provenance. Nothing here claims quality: the tests
run tiny random pipelines on CPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plateforge.calls import Precision
from plateforge.errors import FrameError, ModelIntegrityError, ParameterError, UsageError
from plateforge.frames import Frame, mask_channel_name
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamSpec
from plateforge.provenance import PREFIX
from plateforge_server.generative.folder import VerifiedPipeline, verify_pipeline_folder
from plateforge_server.inference.tiling import run_tiled
from plateforge_server.modelcard import BaseModel, ModelCard, NetSpec, load_weights, save_model, verify_model
from plateforge_server.tools.base import Compute, ToolCall, ToolModule, cast_like, passthrough_channels

__all__ = [
    "ARCH",
    "ENCODING",
    "PARAMETERS",
    "TOOL",
    "InpaintState",
    "base_model_card",
    "decode_linear",
    "encode_linear",
    "install_base_model",
    "load_pipeline",
    "provenance_attributes",
    "tool_module_for",
]

#: NetSpec.arch of a served diffusers inpainting model.
ARCH = "diffusers-inpaint"
#: The tool name of generative models.
TOOL = "generative-fill"
#: The scene-linear <-> model-space encoding (see :func:`encode_linear`); recorded in provenance.
ENCODING = "reinhard-srgb/1"
_RGB = ("R", "G", "B")
#: Largest value the decode gives back: half's largest finite value.
_LARGEST = 65504.0

PARAMETERS = (
    ParamSpec("prompt", "string", "", label="Prompt", description="What to paint into the mask"),
    ParamSpec("negative_prompt", "string", "", label="Negative prompt", description="What to keep out of it"),
    ParamSpec("steps", "int", 30, label="Steps", description="Denoising steps", minimum=1, maximum=200),
    ParamSpec(
        "guidance", "float", 7.5, label="Guidance", description="Classifier-free guidance scale", minimum=0, maximum=30
    ),
    ParamSpec(
        "strength",
        "float",
        1.0,
        label="Strength",
        description="How far the masked area is noised before denoising (1: fully)",
        minimum=0.01,
        maximum=1.0,
    ),
    ParamSpec("seed", "int", 0, label="Seed", description="Noise seed (tile k uses seed + k)", minimum=0),
    ParamSpec("tile", "int", 512, label="Tile", description="Tile side in pixels", minimum=16, maximum=4096),
    ParamSpec(
        "overlap", "int", 64, label="Overlap", description="Pixels neighbouring tiles share and cross-fade", minimum=0
    ),
)
INPUTS = (
    InputSpec("plate", "scene-linear plate", channels=_RGB),
    InputSpec("mask", "what to fill: alpha (or the first channel), 1 = fill"),
)
OUTPUTS = (OutputSpec("image", "the plate with the mask filled; other channels untouched", channels=_RGB),)


# -- encoding ---------------------------------------------------------------------------------


def encode_linear(rgb: np.ndarray) -> np.ndarray:
    """Scene-linear values -> the model's [0, 1]: Reinhard ``x / (1 + x)`` (0.18 -> 0.15,
    1 -> 0.5, highlights compressed, never clipped), then the sRGB transfer curve, as diffusion
    models were trained on display-referred sRGB images. Negative values become 0."""
    x = np.maximum(rgb.astype(np.float32), 0.0)
    t = x / (1.0 + x)
    encoded: np.ndarray = np.where(t <= 0.0031308, 12.92 * t, 1.055 * np.power(t, 1 / 2.4) - 0.055)
    clipped: np.ndarray = np.clip(encoded, 0.0, 1.0).astype(np.float32)
    return clipped


def decode_linear(encoded: np.ndarray) -> np.ndarray:
    """The inverse of :func:`encode_linear` on [0, 1] (1 decodes to :data:`_LARGEST`)."""
    y = np.clip(encoded.astype(np.float64), 0.0, 1.0)
    t = np.where(y <= 0.04045, y / 12.92, np.power((y + 0.055) / 1.055, 2.4))
    t = np.minimum(t, _LARGEST / (1.0 + _LARGEST))
    decoded: np.ndarray = (t / (1.0 - t)).astype(np.float32)
    return decoded


# -- cards and folders ------------------------------------------------------------------------


def base_model_card(
    verified: VerifiedPipeline,
    *,
    name: str,
    version: str,
    pipeline: str,
    lora: dict[str, Any] | None = None,
    description: str = "",
    sources: tuple[Any, ...] = (),
    training: dict[str, Any] | None = None,
) -> ModelCard:
    """The card of a generative model on ``verified`` (``pipeline``: how the card names its folder)."""
    config = {"pipeline": pipeline, "encoding": ENCODING, "lora": lora}
    return ModelCard(
        name=name,
        version=version,
        tool=TOOL,
        net=NetSpec(arch=ARCH, config=config),
        description=description or f"generative fill from the licensed base model {verified.name}",
        inputs=INPUTS,
        outputs=OUTPUTS,
        parameters=PARAMETERS,
        sources=sources,
        base_model=BaseModel(name=verified.name, licence=verified.licence, sha256=verified.sha256),
        training=training or {},
    )


def install_base_model(pipeline: Path, models_dir: Path, *, name: str, version: str = "1") -> Path:
    """Serve the licensed pipeline folder ``pipeline`` as ``models_dir/<name>/<version>/``: a card
    naming it (by absolute path; the pipeline is not copied) and no adapter weights. The folder is
    verified first (licence permitting ``infer``, every hash). Return the model folder."""
    verified = verify_pipeline_folder(pipeline, uses=("infer",))
    card = base_model_card(verified, name=name, version=version, pipeline=str(verified.folder))
    target = Path(models_dir) / name / version
    save_model(target, tensors={}, card=card)
    return target


# -- loading ----------------------------------------------------------------------------------


def _pipeline_folder(folder: Path, card: ModelCard, *, source: str) -> Path:
    where = card.net.config.get("pipeline")
    if not isinstance(where, str) or not where:
        raise ModelIntegrityError(f"'{source}': a {ARCH} net needs config 'pipeline' (its folder), got {where!r}")
    path = Path(where)
    return path if path.is_absolute() else folder / path


def _check_card(card: ModelCard, *, source: str) -> None:
    config = card.net.config
    if config.get("encoding") != ENCODING:
        raise ModelIntegrityError(
            f"'{source}': encoding {config.get('encoding')!r} is not one this server runs ({ENCODING!r})"
        )
    if card.base_model is None:
        raise ModelIntegrityError(f"'{source}': a {ARCH} model must name its base model (and its licence and hash)")
    names = sorted(spec.name for spec in card.inputs)
    if names != ["mask", "plate"] or "image" not in [spec.name for spec in card.outputs]:
        raise ModelIntegrityError(f"'{source}': a {ARCH} model takes 'plate' and 'mask' and gives 'image'; has {names}")
    lora = config.get("lora")
    if lora is not None and (not isinstance(lora, dict) or not {"rank", "alpha", "target_modules"} <= set(lora)):
        raise ModelIntegrityError(f"'{source}': 'lora' must give rank, alpha and target_modules, got {lora!r}")


def load_pipeline(verified: VerifiedPipeline, *, device: str = "cpu") -> Any:
    """The inpainting pipeline in the verified folder, from local files only, on ``device``."""
    try:
        from diffusers import AutoPipelineForInpainting
    except ImportError as exc:
        raise UsageError(
            "generative fill needs the [generative] extra: "
            "pip install -c constraints.txt 'plateforge[server,generative]'"
        ) from exc
    try:
        pipe = AutoPipelineForInpainting.from_pretrained(
            str(verified.folder), local_files_only=True, safety_checker=None, requires_safety_checker=False
        )
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise ModelIntegrityError(
            f"base model folder '{verified.folder}' cannot be loaded as a pipeline: {exc}"
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _apply_lora(pipe: Any, lora: dict[str, Any], tensors: dict[str, torch.Tensor], *, source: str) -> None:
    """Add the adapter the card describes to the pipeline's UNet and load its weights, strictly."""
    from peft import LoraConfig
    from peft.utils import set_peft_model_state_dict

    config = LoraConfig(r=int(lora["rank"]), lora_alpha=int(lora["alpha"]), target_modules=list(lora["target_modules"]))
    pipe.unet.add_adapter(config)
    result = set_peft_model_state_dict(pipe.unet, tensors)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    missing = [k for k in getattr(result, "missing_keys", []) or [] if "lora_" in k]
    if unexpected or missing:
        raise ModelIntegrityError(
            f"'{source}': the LoRA weights do not fit the base model's UNet "
            f"(unexpected {unexpected[:3]}, missing {missing[:3]})"
        )


@dataclass
class InpaintState:
    """What ``load`` builds."""

    card: ModelCard
    base: VerifiedPipeline
    pipe: Any
    device: str
    parameter_bytes: int


def tool_module_for(folder: Path, card: ModelCard) -> ToolModule:
    """The generative model in ``folder`` (card already read) as a tool module; see the module
    docstring. The card is checked now; the folders are hashed only by ``load``."""
    folder = Path(folder)
    source = str(folder / "card.json")
    _check_card(card, source=source)
    pipeline = _pipeline_folder(folder, card, source=source)
    base = card.base_model
    assert base is not None  # _check_card
    info = card.to_model_info()
    info = dataclasses.replace(
        info,
        provenance=f"{info.provenance}; base sha256 {base.sha256}; encoding {ENCODING}",
        attributes={**info.attributes, "base_model": base.name, "base_model_sha256": base.sha256},
    )
    lora = card.net.config.get("lora")

    def load(*, device: str) -> InpaintState:
        verified_card = verify_model(folder)
        verified = verify_pipeline_folder(pipeline, uses=("infer",))
        if verified.sha256 != base.sha256:
            raise ModelIntegrityError(
                f"'{source}' names base model {base.name} with sha256 {base.sha256}, but '{pipeline}' now hashes to "
                f"{verified.sha256}: it is not the pipeline this model was made for"
            )
        pipe = load_pipeline(verified, device=device)
        if lora is not None:
            _apply_lora(pipe, lora, load_weights(folder, device=device), source=source)
        size = sum(
            p.numel() * p.element_size()
            for part in (pipe.unet, pipe.vae, getattr(pipe, "text_encoder", None))
            if part is not None
            for p in part.parameters()
        )
        return InpaintState(card=verified_card, base=verified, pipe=pipe, device=device, parameter_bytes=int(size))

    def run(state: InpaintState, call: ToolCall) -> dict[str, Frame]:
        return _run(info, state, call)

    return ToolModule(info=info, load=load, run=run, compute=_pipeline_compute)


def _pipeline_compute(*, device: str, precision: Precision) -> Compute:
    """The pipeline is loaded in float32 (no torch_dtype) and runs so on the server's device."""
    return Compute(device, "fp32")


# -- running ----------------------------------------------------------------------------------


class _PipelineTiles:
    """The pipeline as :func:`run_tiled` sees a net: ``(N, 4, h, w)`` tiles of encoded R, G, B and
    mask in, ``(N, 3, h, w)`` encoded R, G, B out. Tiles without mask come back as they went in."""

    def __init__(self, pipe: Any, params: dict[str, Any], *, tile: int, cancelled: Callable[[], bool]) -> None:
        self.pipe = pipe
        self.params = params
        self.tile = tile
        self.cancelled = cancelled
        self.count = 0
        vae_scale = int(getattr(pipe, "vae_scale_factor", 8))
        downs = len(getattr(pipe.unet.config, "down_block_types", ())) or 1
        self._multiple: int = vae_scale * 2 ** (int(downs) - 1)

    @property
    def receptive_field(self) -> int:
        # Attention sees the whole tile: every output pixel depends on every pixel of its tile.
        return self.tile

    @property
    def size_multiple(self) -> int:
        return self._multiple

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        bottom, right = -height % self._multiple, -width % self._multiple
        if not bottom and not right:
            return x
        return torch.nn.functional.pad(x, (0, right, 0, bottom), mode="replicate")

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]:
        parameters: Iterator[torch.nn.Parameter] = self.pipe.unet.parameters(recurse)
        return parameters

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._fill(x)

    def _fill(self, tiles: torch.Tensor) -> torch.Tensor:
        out = tiles[:, :3].clone()
        todo = [k for k in range(tiles.shape[0]) if bool((tiles[k, 3] > 0).any())]
        seeds = [int(self.params["seed"]) + self.count + k for k in range(tiles.shape[0])]
        self.count += tiles.shape[0]
        if not todo:
            return out
        if self.cancelled():
            return out  # run_tiled raises CancelledError before the next batch
        height, width = tiles.shape[-2:]
        n = len(todo)
        result = self.pipe(
            prompt=[str(self.params["prompt"])] * n,
            negative_prompt=[str(self.params["negative_prompt"])] * n if self.params["negative_prompt"] else None,
            image=tiles[todo, :3],
            mask_image=tiles[todo, 3:4],
            height=int(height),
            width=int(width),
            num_inference_steps=int(self.params["steps"]),
            guidance_scale=float(self.params["guidance"]),
            strength=float(self.params["strength"]),
            generator=[torch.Generator(device="cpu").manual_seed(seeds[k]) for k in todo],
            output_type="pt",
        )
        images = result.images.to(out.device, torch.float32)
        out[todo] = images
        return out


def _mask(call: ToolCall, plate: Frame, name: str) -> np.ndarray:
    frame = call.frame("mask", plate.frame_number)
    if frame.data_window != plate.data_window:
        raise FrameError(
            f"model {name!r}: mask {frame.label()} data window {frame.data_window} differs from the plate's "
            f"{plate.data_window}"
        )
    mask: np.ndarray = np.clip(
        np.nan_to_num(frame.channels[mask_channel_name(frame.channels)].astype(np.float32), nan=0.0), 0.0, 1.0
    )
    return mask


def provenance_attributes(card: ModelCard) -> dict[str, str]:
    """What every output of a generative model says about its base model and encoding."""
    base = card.base_model
    assert base is not None
    return {
        f"{PREFIX}baseModel": base.name,
        f"{PREFIX}baseModelLicence": base.licence,
        f"{PREFIX}baseModelSha256": base.sha256,
        f"{PREFIX}encoding": ENCODING,
        f"{PREFIX}lora": "yes" if card.net.config.get("lora") else "no",
    }


def _run(info: ModelInfo, state: InpaintState, call: ToolCall) -> dict[str, Frame]:
    call.check_cancelled()
    plate = call.frame("plate")
    mask = _mask(call, plate, info.name)
    attributes = provenance_attributes(state.card)
    if not bool((mask > 0).any()):
        return {"image": passthrough_channels(plate, {}).replace(attributes={**plate.attributes, **attributes})}
    rgb = plate.stack(_RGB).astype(np.float32)
    if not bool(np.isfinite(rgb).all()):
        raise FrameError(f"model {info.name!r}: the plate holds NaN or Inf in R, G, B; sanitise them first")
    planes = np.concatenate([encode_linear(rgb), mask[:, :, None]], axis=2)
    params = dict(call.params)
    if int(int(params["steps"]) * float(params["strength"])) < 1:
        # The pipeline denoises steps * strength steps; fewer than one is no fill at all.
        raise ParameterError(
            f"model {info.name!r}: steps {params['steps']} at strength {params['strength']} denoise no step; "
            "raise steps or strength"
        )
    tile = int(params["tile"])
    net = _PipelineTiles(state.pipe, params, tile=tile, cancelled=call.cancelled.is_set)
    overlap = min(int(params["overlap"]), max(tile - net.size_multiple, 0))
    encoded = run_tiled(
        net,
        torch.from_numpy(np.ascontiguousarray(planes)).permute(2, 0, 1),
        tile=tile,
        overlap=overlap,
        batch=1,
        cancelled=call.cancelled.is_set,
    )
    call.check_cancelled()
    filled = decode_linear(encoded.permute(1, 2, 0).numpy())
    weight = mask[:, :, None]
    result = rgb * (1.0 - weight) + filled * weight
    inside = mask > 0
    produced = {
        name: np.where(inside, cast_like(result[:, :, k], plate.channels[name]), plate.channels[name])
        for k, name in enumerate(_RGB)
    }
    image = passthrough_channels(plate, produced)
    return {"image": image.replace(attributes={**plate.attributes, **attributes})}
