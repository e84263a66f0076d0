"""LoRA fine-tuning (peft) of a licensed inpainting base model on a project's licensed stills.

:func:`train_lora` reads top to bottom:

1. the base model folder is proved licensed for ``infer`` and ``train`` and unchanged
   (:func:`~plateforge_server.generative.folder.verify_pipeline_folder`); the dataset manifest's
   every file is proved licensed for training (:func:`~plateforge_server.datasets.check_for_training`);
2. the pipeline is loaded from local files only, every weight frozen, and a LoRA adapter added to
   the UNet's attention projections (``unet.add_adapter``): only the adapter trains;
3. each step takes a random crop of a still, encodes it to the model's space as inference does
   (:func:`~plateforge_server.generative.inpaint.encode_linear`, then [-1, 1]), cuts a random
   rectangular hole, and trains the inpainting objective of Stable Diffusion: predict the noise
   added to the crop's latents, given the hole mask and the latents of the holed crop;
4. the adapter, the optimiser and the step are checkpointed every ``checkpoint_every`` steps
   (atomically, ``out/checkpoint.pt``) and a run started again with the same ``out`` resumes;
5. the adapter's weights are exported as a served model folder (``out/model``): a ``diffusers-inpaint``
   card naming the base model (name, licence, hash), the stills it learned from, and the LoRA config.

Training jobs run it as mode ``"lora"`` (tool ``generative-fill``, :func:`train_job`): the
engine hands the run over here, as this loop is not the project's UNet loop. It runs float32 on
one device (no AMP, no DDP).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from plateforge import atomic
from plateforge.errors import CancelledError, UsageError
from plateforge.exr import StrPath, read_exr
from plateforge.manifest_format import Manifest, check_for_training, load_manifest, verified_path
from plateforge_server.generative.folder import verify_pipeline_folder
from plateforge_server.generative.inpaint import base_model_card, encode_linear, load_pipeline
from plateforge_server.modelcard import SourceRecord, save_model

if TYPE_CHECKING:
    from plateforge_server.training.config import TrainConfig
    from plateforge_server.training.distributed import Group
    from plateforge_server.training.engine import TrainProgress, TrainResult

__all__ = ["LoraConfig", "train_job", "train_lora"]

_RGB = ("R", "G", "B")


@dataclass(frozen=True)
class LoraConfig:
    """A LoRA run; stored in the card's ``training`` so the run can be explained."""

    steps: int = 200  # optimiser steps
    rank: int = 4  # adapter rank
    alpha: int = 4  # adapter scale numerator (scale = alpha / rank)
    learning_rate: float = 1e-4
    crop: int = 256  # crop side in pixels (rounded down to the pipeline's size multiple)
    prompt: str = ""  # the caption every still is trained with
    seed: int = 0
    checkpoint_every: int = 50
    #: The UNet modules that get adapters: the attention projections, as diffusers' own LoRA script.
    target_modules: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")

    def check(self) -> None:
        problems = [
            f"{name} must be >= 1, got {getattr(self, name)}"
            for name in ("steps", "rank", "alpha", "crop", "checkpoint_every")
            if getattr(self, name) < 1
        ]
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if problems:
            raise UsageError("LoRA config: " + "; ".join(problems))


def _stills(dataset: Path | Manifest) -> tuple[list[np.ndarray], tuple[SourceRecord, ...]]:
    """Every licensed still of the dataset as encoded ``(H, W, 3)`` [0, 1] arrays, with their records."""
    files = check_for_training(load_manifest(dataset))
    images, records = [], []
    for item in files:
        with verified_path(item) as path:  # the bytes check_for_training hashed, read through one open file
            frame = read_exr(path)
        frame.require(_RGB, role=f"still '{item.name}'")
        rgb = np.nan_to_num(frame.stack(_RGB).astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        images.append(encode_linear(rgb))
        assert item.sha256 is not None  # check_for_training verified it
        # The card carries each still's terms and artists, as a trained net's card does (lineage credits them).
        records.append(
            SourceRecord(
                item.name, item.sha256, item.licence, item.rights_holder,
                permitted_uses=item.permitted_uses, contributors=item.contributors,
            )
        )  # fmt: skip
    return images, tuple(records)


def _batch(
    images: list[np.ndarray], crop: int, multiple: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One crop in [-1, 1] ``(1, 3, c, c)`` and a random rectangular hole ``(1, 1, c, c)`` (1 = hole)."""
    image = images[int(rng.integers(len(images)))]
    height, width = image.shape[:2]
    side = min(crop, height, width)
    side -= side % multiple
    if side < multiple:
        raise UsageError(f"a still of {width}x{height} is smaller than the pipeline's size multiple {multiple}")
    top, left = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
    pixels = torch.from_numpy(np.ascontiguousarray(image[top : top + side, left : left + side])).permute(2, 0, 1)
    hole = torch.zeros(1, side, side)
    h, w = int(rng.integers(side // 4, side // 2 + 1)), int(rng.integers(side // 4, side // 2 + 1))
    y, x = int(rng.integers(side - h + 1)), int(rng.integers(side - w + 1))
    hole[:, y : y + h, x : x + w] = 1.0
    return (pixels * 2.0 - 1.0)[None], hole[None]


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic.atomic_path(path, durable=True) as temp:
        torch.save(state, temp)


def train_lora(
    *,
    pipeline: Path,
    dataset: Path | Manifest,
    out: Path,
    name: str,
    version: str = "1",
    config: LoraConfig | None = None,
    device: str = "cpu",
    progress: Callable[[int, float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Path:
    """Fine-tune a LoRA on ``pipeline`` from the stills of ``dataset``; return the exported model
    folder (``out/model``). See the module docstring. Licence problems are :class:`LicenceError`,
    a changed or incomplete base :class:`ModelIntegrityError`, each naming the file.
    ``progress(step, loss)`` is called after every step; once ``cancelled()`` is true the run
    checkpoints and raises :class:`CancelledError`."""
    from peft import LoraConfig as PeftLoraConfig
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

    config = config or LoraConfig()
    config.check()
    verified = verify_pipeline_folder(pipeline, uses=("infer", "train"))
    images, sources = _stills(dataset)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    pipe = load_pipeline(verified, device=device)
    for part in (pipe.unet, pipe.vae, pipe.text_encoder):
        part.requires_grad_(False)
    pipe.unet.add_adapter(
        PeftLoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            init_lora_weights="gaussian",
            target_modules=list(config.target_modules),
        )
    )
    adapter = [p for p in pipe.unet.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(adapter, lr=config.learning_rate)
    rng = np.random.default_rng(config.seed)
    step = 0
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False, map_location=device)
        set_peft_model_state_dict(pipe.unet, saved["adapter"])
        optimiser.load_state_dict(saved["optimiser"])
        step = int(saved["step"])
        rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
    multiple = int(pipe.vae_scale_factor) * 2 ** (len(pipe.unet.config.down_block_types) - 1)
    scaling = float(pipe.vae.config.scaling_factor)
    scheduler = pipe.scheduler
    with torch.no_grad():
        tokens = pipe.tokenizer(
            [config.prompt], padding="max_length", max_length=pipe.tokenizer.model_max_length, return_tensors="pt"
        )
        context = pipe.text_encoder(tokens.input_ids.to(device))[0]
    pipe.unet.train()
    losses: list[float] = []
    while step < config.steps:
        image, hole = (t.to(device) for t in _batch(images, config.crop, multiple, rng))
        with torch.no_grad():
            latents = pipe.vae.encode(image).latent_dist.sample() * scaling
            holed = pipe.vae.encode(image * (1.0 - hole)).latent_dist.sample() * scaling
            small = torch.nn.functional.interpolate(hole, size=latents.shape[-2:])
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, int(scheduler.config.num_train_timesteps), (latents.shape[0],)).to(device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        predicted = pipe.unet(torch.cat([noisy, small, holed], dim=1), timesteps, context).sample
        loss = torch.nn.functional.mse_loss(predicted.float(), noise.float())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call,unused-ignore]
        optimiser.step()
        step += 1
        losses.append(float(loss.detach()))
        stop = cancelled is not None and cancelled()
        if step % config.checkpoint_every == 0 or step == config.steps or stop:
            _save_checkpoint(
                checkpoint,
                {
                    "adapter": get_peft_model_state_dict(pipe.unet),
                    "optimiser": optimiser.state_dict(),
                    "step": step,
                    "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                },
            )
        if progress is not None:
            progress(step, losses[-1])
        if stop:
            raise CancelledError(f"LoRA training cancelled at step {step} of {config.steps} (checkpointed)")
    tensors = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(pipe.unet).items()}
    lora = {"rank": config.rank, "alpha": config.alpha, "target_modules": list(config.target_modules)}
    card = base_model_card(
        verified,
        name=name,
        version=version,
        pipeline=str(verified.folder),
        lora=lora,
        description=f"generative fill: {verified.name} with a LoRA trained on {len(sources)} licensed still(s)",
        sources=sources,
        training={
            "mode": "lora",
            "steps": config.steps,
            "rank": config.rank,
            "alpha": config.alpha,
            "learning_rate": config.learning_rate,
            "crop": config.crop,
            "prompt": config.prompt,
            "seed": config.seed,
            "dataset": str(dataset.path if isinstance(dataset, Manifest) else dataset),
            "last_loss": losses[-1] if losses else None,
        },
    )
    model = out / "model"
    save_model(model, tensors=tensors, card=card)
    return model


def train_job(
    config: TrainConfig,
    *,
    manifest_path: StrPath | Manifest,
    out_dir: StrPath,
    progress: Callable[[TrainProgress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> TrainResult:
    """A training job's run in mode ``"lora"``: :func:`train_lora` with the job's config (``base_model``,
    ``lora_rank``, ``prompt``, ``steps``, ``lr``, ``crop``, ``seed``, ``checkpoint_every``, ``device``),
    reporting progress as the engine does. There is no validation PSNR: it reports NaN."""
    from plateforge_server.device import pick_device
    from plateforge_server.training.engine import TrainProgress, TrainResult

    started = time.monotonic()
    out = Path(out_dir)
    checkpoint = out / "checkpoint.pt"
    resumed_from = int(torch.load(checkpoint, weights_only=False)["step"]) if checkpoint.exists() else 0
    lora = LoraConfig(
        steps=config.steps,
        rank=config.lora_rank,
        alpha=config.lora_rank,
        learning_rate=config.lr,
        crop=config.crop,
        prompt=config.prompt,
        seed=config.seed,
        checkpoint_every=config.checkpoint_every,
    )
    losses: list[float] = []

    def report(step: int, loss: float) -> None:
        losses.append(loss)
        if progress is None:
            return
        seconds = time.monotonic() - started
        done = step - resumed_from
        eta = seconds / done * (config.steps - step) if done > 0 else None
        progress(TrainProgress(step, config.steps, loss, None, config.lr, seconds, eta))

    name = config.name or load_manifest(manifest_path).name
    model = train_lora(
        pipeline=Path(config.base_model),
        dataset=manifest_path if isinstance(manifest_path, Manifest) else Path(manifest_path),
        out=out,
        name=name,
        config=lora,
        device=pick_device(config.device),
        progress=report,
        cancelled=cancelled,
    )
    return TrainResult(
        steps=config.steps,
        final_loss=losses[-1] if losses else math.nan,
        val_psnr=math.nan,
        identity_psnr=math.nan,
        model_dir=model,
        checkpoint=checkpoint,
        resumed_from=resumed_from,
        losses=tuple(losses),
        seconds=time.monotonic() - started,
    )


class _LoraTool:
    """The generative fill's adapter training as the trainer's tool list sees it
    (:class:`plateforge_server.tools.interface.OwnLoop`): a loop of its own, on one device."""

    config_fields: frozenset[str] = frozenset()

    def config_problems(self, config: TrainConfig) -> list[str]:
        problems = []
        if not isinstance(config.base_model, str) or not config.base_model.strip():
            problems.append("mode 'lora' needs base_model: the licensed diffusers pipeline folder to adapt")
        if isinstance(config.init, str) and config.init:
            problems.append("init is for plateforge nets; mode 'lora' starts from its base_model pipeline")
        return problems

    def served_tool(self, config: TrainConfig) -> str:
        return "generative-fill"

    def train_job(
        self,
        config: TrainConfig,
        *,
        manifest_path: StrPath | Manifest,
        out_dir: StrPath,
        progress: Callable[[TrainProgress], None] | None,
        cancelled: Callable[[], bool] | None,
        group: Group | None,
    ) -> TrainResult:
        if group is not None and group.world_size > 1:
            raise UsageError("mode 'lora' trains on one device; run it without torchrun")
        return train_job(config, manifest_path=manifest_path, out_dir=out_dir, progress=progress, cancelled=cancelled)


#: The ``"lora"`` entry of :data:`plateforge_server.tools.LEARNED`.
LORA = _LoraTool()
