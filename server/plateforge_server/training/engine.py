"""The training loop: licence check, data, net, optimiser, resume, steps, checkpoints, export.

:func:`train` reads top to bottom:

1. **Data** (:mod:`.data`): the manifest's licences are checked before any frame is read.
2. **Net**: a :class:`~plateforge_server.nets.unet.UNet` of the configured size, as the run's
   learned tool builds it (:class:`~plateforge_server.tools.interface.LearnedTool`, found by the
   config's mode in :data:`plateforge_server.tools.LEARNED`): its output is residual on what the
   untrained net gives (the plate, or the tool's classical method), so training learns the change.
   The engine asks the tool for the net, the data, the baseline and the card's contract; it has no
   per-tool branches.
3. **Optimiser**: AdamW; the learning rate is a pure function of the step
   (:meth:`TrainConfig.lr_at`: linear warm-up, cosine decay), set before every step, so the
   schedule has no state to lose. On CUDA (``amp`` "auto" or "on") the forward pass runs under
   fp16 autocast with a ``GradScaler``; on CPU everything is float32 and deterministic.
4. **Resume**: the newest valid checkpoint in ``out_dir/checkpoints`` restores the weights, the
   optimiser state, the crop generator and torch's generators, and the loss history; the run
   continues at the next step and gives the same weights as an uninterrupted run (CPU).
5. **Loop**: one batch per step; every ``checkpoint_every`` steps a checkpoint; every
   ``validation_every`` steps the validation PSNR (scene-linear, :func:`plateforge.metrics.psnr`);
   every ``preview_every`` steps ``preview.png`` (validation input | output | target) and
   ``loss.png``. ``cancelled()`` is polled after every step: once true, a checkpoint is written
   and :class:`~plateforge.errors.CancelledError` raised. A ``minutes`` budget ends the loop
   after the step that reaches it, as if that step were the last.
6. **Export**: ``out_dir/model/`` via :func:`plateforge_server.modelcard.save_model`, with a card
   naming every source file, its hash and licence, the training config and the final metrics.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plateforge.errors import CancelledError, UsageError
from plateforge.exr import StrPath
from plateforge.manifest_format import Manifest
from plateforge.metrics import psnr
from plateforge_server.device import pick_device
from plateforge_server.modelcard import ModelCard, NetSpec, ParentModel, SourceRecord, save_model
from plateforge_server.nets.unet import UNet, UNetConfig, decode
from plateforge_server.tools.interface import LearnedTool, OwnLoop, learned_tool
from plateforge_server.training import checkpoints
from plateforge_server.training.config import TrainConfig
from plateforge_server.training.data import Batch, Sampler, TrainingData
from plateforge_server.training.distributed import Group
from plateforge_server.training.initial import check_parent, load_initial_weights
from plateforge_server.training.loss import training_loss
from plateforge_server.training.pictures import History, TensorBoardEvents, write_pictures
from plateforge_server.training.selection import Best, guarded_score
from plateforge_server.training.temporal import shift_consistency

__all__ = ["TrainProgress", "TrainResult", "net_config_for", "train"]


@dataclass(frozen=True)
class TrainProgress:
    """Reported after every step."""

    step: int
    steps: int
    #: This step's training loss.
    loss: float
    #: The latest validation PSNR in dB (scene-linear, peak 1.0), None before the first.
    val_psnr: float | None
    #: The learning rate this step used.
    lr: float
    #: Seconds spent in this call to :func:`train` so far (not counting a resumed run's earlier time).
    seconds: float
    #: Estimated seconds to the last step, from this call's pace; None before the first step.
    eta_seconds: float | None


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    steps: int
    final_loss: float
    #: Validation PSNR of the trained net, and of the untrained one: the identity (the input
    #: itself), or in "cleanup" mode the classical cleanup the net starts from.
    val_psnr: float
    identity_psnr: float
    #: ``out_dir/model``: the exported model folder.
    model_dir: Path
    #: The last checkpoint written.
    checkpoint: Path
    #: The step a resumed run continued from (0: a fresh start).
    resumed_from: int
    #: Training loss of every step, the first step first (a resumed run's history included).
    losses: tuple[float, ...]
    seconds: float
    #: SHA-256 of the final weights in memory (every rank of a distributed run computes its own).
    weights_sha256: str = ""


def net_config_for(config: TrainConfig) -> UNetConfig:
    """The UNet a run trains: the configured size, as the run's learned tool builds it
    (:meth:`~plateforge_server.tools.interface.LearnedTool.net_config`)."""
    return _tool(config).net_config(config)


def _tool(config: TrainConfig) -> LearnedTool:
    """The learned tool of the run's mode (:data:`plateforge_server.tools.LEARNED`)."""
    tool = learned_tool(config.mode)
    if not isinstance(tool, LearnedTool):
        raise UsageError(f"mode {config.mode!r} trains with a loop of its own, not a UNet")
    return tool


def _amp_enabled(config: TrainConfig, device: torch.device) -> bool:
    if config.amp == "on" and device.type != "cuda":
        raise UsageError(f"amp 'on' needs a CUDA device; this run is on {device}")
    return device.type == "cuda" and config.amp != "off"


def _autocast(enabled: bool) -> contextlib.AbstractContextManager[Any]:
    return torch.autocast(device_type="cuda", dtype=torch.float16) if enabled else contextlib.nullcontext()


def train(
    config: TrainConfig,
    *,
    manifest_path: StrPath | Manifest,
    out_dir: StrPath,
    progress: Callable[[TrainProgress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    resume: bool = True,
    group: Group | None = None,
) -> TrainResult:
    """Train per ``config`` on the licensed files of ``manifest_path``; write checkpoints, previews
    and the exported model under ``out_dir`` (see the module doc). Raises
    :class:`~plateforge.errors.LicenceError` before training on material that may not be used, and
    :class:`~plateforge.errors.CancelledError` (after checkpointing) when ``cancelled()`` turns true.

    ``group`` (from :func:`plateforge_server.training.distributed.join`, under torchrun) makes this
    one rank of a data-parallel run: DDP averages the gradients, only rank 0 writes."""
    own = learned_tool(config.mode)
    if isinstance(own, OwnLoop):  # e.g. a diffusers pipeline's adapter (LoRA)
        result: TrainResult = own.train_job(
            config, manifest_path=manifest_path, out_dir=out_dir, progress=progress, cancelled=cancelled, group=group
        )
        return result
    tool = _tool(config)
    started = time.monotonic()
    ranks = group or Group()
    out = Path(out_dir)
    checkpoint_dir = out / "checkpoints"

    net_config = tool.net_config(config)
    if config.init:  # a parent this run cannot start from is refused before any footage is read
        check_parent(config, net_config)
    # 1. Data: licences first, then frames.
    data = tool.load_data(config, manifest_path)
    sampler = Sampler(config, data, stream=ranks.rank)

    # 2. Net, on the chosen device (under torchrun: this rank's GPU, gradients averaged by DDP).
    device = torch.device(pick_device(ranks.device(config.device)))
    amp = _amp_enabled(config, device)

    parent: ParentModel | None = None

    def fresh() -> UNet:
        """The untrained net: the identity or the tool's classical method; with ``init``, the parent
        model's weights (``plateforge_server.training.initial``)."""
        nonlocal parent
        start = tool.fresh_net(config, net_config, data)
        if config.init:
            parent = load_initial_weights(config, net_config, start)
        return start

    net = fresh().to(device)
    model: torch.nn.Module = net
    if ranks.distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )

    # 3. Optimiser (the schedule is config.lr_at(step)) and, on CUDA, the gradient scaler.
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr_at(1), weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)  # type: ignore[attr-defined,unused-ignore]
    validation = data.validation.to(device)
    start_prediction = tool.baseline(validation, net)
    # Step 0 is what the run starts from: the classical baseline, or the parent model's output.
    identity = _psnr(validation, _predict(net, validation, amp) if parent else start_prediction)
    best = Best.start(identity)  # model selection: the untrained net (the classical tool) is step 0
    # Some tools' checkpoints must not lose to the start on any one validation image (selection module doc).
    start_images = _psnrs(validation, start_prediction) if tool.guards_images(config) else None
    history = History(config.steps, identity, _start_name(tool, config))

    def predict() -> torch.Tensor:
        """The net's output on the validation batch, as the runtime delivers it (a matte clipped to [0, 1])."""
        return tool.delivered(_predict(net, validation, amp))

    def offer(step: int, prediction: torch.Tensor, score: float) -> None:
        if start_images is not None:
            score = guarded_score(score, _psnrs(validation, prediction), start_images)
        if best.offer(step, score, net.state_dict):
            best.save(out / "best")

    # 4. Resume.
    step, losses, val_psnr = 0, [], None
    resumed = checkpoints.load_latest(checkpoint_dir, device=device) if resume else None
    if resumed is not None:
        _check_same_run(config, resumed)
        net.load_state_dict(resumed.model)
        optimizer.load_state_dict(resumed.optimizer)
        _restore_sampler(sampler, resumed.state, ranks)
        _set_torch_rng(resumed.rng)
        if amp and resumed.state.get("scaler"):
            scaler.load_state_dict(resumed.state["scaler"])
        step, val_psnr = resumed.step, resumed.state["val_psnr"]
        losses = [math.nan if v is None else float(v) for v in resumed.state["losses"]]
        history.validation = [(int(s), math.nan if v is None else float(v)) for s, v in resumed.state.get("val", [])]
        best = Best.resume(out / "best", start_score=identity, upto=step)
    start_step = step
    board = None
    if config.tensorboard and ranks.is_main:
        board = TensorBoardEvents(out / "tensorboard", after=step, validations=len(history.validation))
    last_checkpoint = resumed.path if resumed is not None else None
    # The wall-clock budget (config.minutes) counts a resumed run's earlier time; under torchrun
    # every rank takes the slowest rank's clock, so all stop at one step with one learning rate.
    budget = None if config.minutes is None else config.minutes * 60.0
    spent_before = float(resumed.state.get("train_seconds", 0.0)) if resumed is not None else 0.0

    def spent() -> float:
        return max(ranks.gather(spent_before + time.monotonic() - started)) if budget is not None else 0.0

    seconds_spent = spent()

    def save() -> Path | None:
        samplers = ranks.gather(sampler.state())  # every rank takes part; rank 0 writes
        if not ranks.is_main:
            return None
        state = {
            "config": config.to_dict(),
            "net": net_config.to_dict(),
            "sampler": samplers[0],
            "samplers": samplers,
            "scaler": scaler.state_dict() if amp else {},
            "losses": [v if math.isfinite(v) else None for v in losses],  # JSON: no NaN
            "val_psnr": val_psnr if val_psnr is not None and math.isfinite(val_psnr) else None,  # JSON: no NaN
            "val": [[s, v if math.isfinite(v) else None] for s, v in history.validation],
            "train_seconds": spent_before + time.monotonic() - started,
        }
        return checkpoints.save_checkpoint(
            checkpoint_dir,
            step=step,
            model=net.state_dict(),
            optimizer=optimizer.state_dict(),
            rng=_torch_rng(),
            state=state,
            keep=config.keep_checkpoints,
        )

    # 5. The loop.
    out_of_time = budget is not None and step > 0 and seconds_spent >= budget  # a fresh run takes one step at least
    while step < config.steps and not out_of_time:
        if ranks.any(cancelled is not None and cancelled()):
            if last_checkpoint is None or checkpoints.checkpoint_name(step) != last_checkpoint.name:
                save()
            raise CancelledError(f"training cancelled at step {step} of {config.steps}; a checkpoint was saved")
        step += 1
        lr = config.lr_at(step, seconds=seconds_spent if budget is not None else None)
        for params in optimizer.param_groups:
            params["lr"] = lr
        batch = sampler.batch().to(device)
        model.train()
        with _autocast(amp):
            output = model(batch.inputs)
        terms = training_loss(
            tool.scored(output, batch.target),
            batch.target,
            batch.weight,
            ssim_weight=config.ssim_weight,
            mse_weight=config.loss_mse_weight,
            mse_gain=config.mse_gain,
        )
        total = terms.total
        if config.temporal_weight > 0:  # temporal stability (plateforge_server.training.temporal)
            with _autocast(amp):
                total = total + config.temporal_weight * shift_consistency(
                    model, batch.inputs, output, seed=config.seed, step=step
                )
        optimizer.zero_grad(set_to_none=True)
        loss = float(total.detach())
        # A diverged step (loss NaN or Inf: a learning rate far too high) changes nothing: the
        # weights keep their last finite state, and model selection still has step 0 to publish.
        if math.isfinite(loss) or amp:  # under AMP the scaler itself skips non-finite steps
            scaled: torch.Tensor = scaler.scale(total)
            scaled.backward()  # type: ignore[no-untyped-call,unused-ignore]
            if config.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
        losses.append(loss)

        seconds_spent = spent()
        out_of_time = budget is not None and seconds_spent >= budget
        last = step == config.steps or out_of_time
        if ranks.is_main and (step % config.validation_every == 0 or last):
            prediction = predict()
            val_psnr = _psnr(validation, prediction)
            history.validation.append((step, val_psnr))
            offer(step, prediction, val_psnr)
        if ranks.is_main and (step % config.preview_every == 0 or last):
            history.losses = losses
            _write_previews(out, validation, start_prediction, predict(), history, board)
        if step % config.checkpoint_every == 0 or last:
            last_checkpoint = save() or checkpoint_dir / checkpoints.checkpoint_name(step)
        if progress is not None:
            seconds = time.monotonic() - started
            done = step - start_step
            eta = seconds / done * (config.steps - step) if done else None
            if budget is not None:
                eta = max(0.0, min(eta if eta is not None else budget, budget - seconds_spent))
            progress(TrainProgress(step, config.steps, losses[-1], val_psnr, lr, seconds, eta))

    if last_checkpoint is None or last_checkpoint.name != checkpoints.checkpoint_name(step):
        # resumed at the end already: the final state is on disk anyway
        last_checkpoint = save() or checkpoint_dir / checkpoints.checkpoint_name(step)
    if val_psnr is None:
        prediction = predict()
        val_psnr = _psnr(validation, prediction)
        offer(step, prediction, val_psnr)

    # 6. Export (rank 0; the others wait, so every rank returns with the model on disk).
    model_dir = out / "model"
    final_loss = losses[-1] if losses else math.nan
    if ranks.is_main:
        card = _card(
            tool,
            config,
            net_config,
            data,
            final_loss=final_loss,
            val_psnr=val_psnr,
            identity=identity,
            step=step,
            best=best,
            world_size=ranks.world_size,
            parent=parent,
        )
        # The best checkpoint by validation, or the untrained net (the classical tool) if none beat it.
        published = best.state_dict(lambda: fresh().state_dict())
        save_model(model_dir, tensors=published, card=card)
    ranks.barrier()
    return TrainResult(
        steps=step,
        final_loss=final_loss,
        val_psnr=val_psnr,
        identity_psnr=identity,
        model_dir=model_dir,
        checkpoint=last_checkpoint,
        resumed_from=start_step,
        losses=tuple(losses),
        seconds=time.monotonic() - started,
        weights_sha256=checkpoints.tensors_sha256(net.state_dict()),
    )


# -- helpers, in the order train uses them ---------------------------------------------------------


def _restore_sampler(sampler: Sampler, state: dict[str, Any], group: Group) -> None:
    """This rank's crop generator as the checkpoint left it. A run resumed with another world
    size keeps rank 0's stream and starts the other ranks' afresh (their crops differ from the
    uninterrupted run's; the weights and optimiser state are exact)."""
    saved = state.get("samplers")
    if isinstance(saved, list) and len(saved) == group.world_size:
        sampler.set_state(saved[group.rank])
    elif group.rank == 0:
        sampler.set_state(state["sampler"])


def _check_same_run(config: TrainConfig, resumed: checkpoints.Checkpoint) -> None:
    """Refuse to resume a checkpoint written for another config (which fields differ, named)."""
    saved = resumed.state.get("config", {})
    if saved == config.to_dict():
        return
    theirs = TrainConfig.from_dict(saved).to_dict()
    if theirs == config.to_dict():  # saved before a field was added, at its default
        return
    differ = sorted(k for k, v in config.to_dict().items() if theirs.get(k) != v)
    raise UsageError(
        f"checkpoint '{resumed.path}' belongs to a run with a different config ({', '.join(differ)} differ); "
        "use another out_dir, or resume=False to start afresh"
    )


def _torch_rng() -> dict[str, torch.Tensor]:
    states = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states.update({f"cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return states


def _set_torch_rng(states: dict[str, torch.Tensor]) -> None:
    if "torch_cpu" in states:
        torch.set_rng_state(states["torch_cpu"].cpu())
    cuda = [states[f"cuda/{i}"].cpu() for i in range(len(states)) if f"cuda/{i}" in states]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _predict(net: UNet, batch: Batch, amp: bool) -> torch.Tensor:
    """The net's encoded output for a batch, in eval mode, float32."""
    net.eval()
    with torch.no_grad(), _autocast(amp):
        output: torch.Tensor = net(batch.inputs)
    return output.float()


def _hwc(encoded: torch.Tensor) -> Iterator[np.ndarray]:
    """Each image of an encoded ``(N, 3, H, W)`` batch as scene-linear ``(H, W, 3)`` float32."""
    linear = decode(encoded.float()).permute(0, 2, 3, 1).cpu().numpy()
    yield from linear


def _psnrs(batch: Batch, encoded: torch.Tensor) -> list[float] | None:
    """PSNR (dB, scene-linear) of each image of ``encoded`` against the batch's target, where its
    weight says (NaN for an image with no weight); None when the output is not finite."""
    values = []
    weights = batch.weight[:, 0].cpu().numpy()
    for result, truth, weight in zip(_hwc(encoded), _hwc(batch.target), weights, strict=True):
        if not np.isfinite(result).all():  # decoded: a finite encoded value can still overflow
            return None
        values.append(psnr(result, truth, mask=weight) if weight.sum() > 0 else math.nan)
    return values


def _psnr(batch: Batch, encoded: torch.Tensor) -> float:
    """Mean PSNR (dB, scene-linear) of ``encoded`` against the batch's target, where its weight
    says; -inf when the output is not finite (a diverged net: never the one selected)."""
    per_image = _psnrs(batch, encoded)
    if per_image is None:
        return -math.inf
    values = [v for v in per_image if not math.isnan(v)]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 100.0 if values else math.nan  # identical everywhere: report a high finite figure
    return float(np.mean(finite))


def _write_previews(
    out: Path,
    batch: Batch,
    start: torch.Tensor,
    learned: torch.Tensor,
    history: History,
    board: TensorBoardEvents | None,
) -> None:
    """``history.json``, ``loss.png`` and ``preview.png`` (one row per validation image: input |
    classical (the untrained net) | learned | target), see :mod:`plateforge_server.training.pictures`."""
    images = (_hwc(batch.inputs[:, :3]), _hwc(start), _hwc(learned), _hwc(batch.target))
    write_pictures(out, history, [list(row) for row in zip(*images, strict=True)][:4], board=board)


def _start_name(tool: LearnedTool, config: TrainConfig) -> str:
    """What the untrained net is, as the card's metrics and the loss chart's legend name it."""
    return "classical" if tool.starts_classical(config) else "identity"


def _card(
    tool: LearnedTool,
    config: TrainConfig,
    net_config: UNetConfig,
    data: TrainingData,
    *,
    final_loss: float,
    val_psnr: float,
    identity: float,
    step: int,
    best: Best,
    world_size: int = 1,
    parent: ParentModel | None = None,
) -> ModelCard:
    """The exported model's card: contract (the tool's), sources with hashes and licences, config, finite metrics."""
    contract = tool.contract(config, net_config, data)
    start = _start_name(tool, config)
    metrics: dict[str, Any] = {
        "final_loss": final_loss,
        "val_psnr": val_psnr,
        f"{start}_psnr": identity,
        "steps": step,
        "validation": data.validation_kind,
        # Model selection (plateforge_server.training.selection): the published weights are those
        # of selected_step (0: the untrained net, i.e. the classical tool, which no checkpoint beat).
        f"{start}_val_psnr": best.start_score,
        "selected_step": best.step,
        "selected_val_psnr": best.score,
    }
    metrics = {k: v for k, v in metrics.items() if not isinstance(v, float) or math.isfinite(v)}
    sources = tuple(
        SourceRecord(
            path=f.name, sha256=f.sha256 or "", licence=f.licence, rights_holder=f.rights_holder,
            contributors=f.contributors, permitted_uses=f.permitted_uses,
        )
        for f in data.sources
    )  # fmt: skip
    return ModelCard(
        name=config.name or f"{data.dataset}-{config.model_tool}",
        version=f"step{best.step}",
        tool=config.model_tool,
        net=NetSpec(contract.arch, net_config.to_dict()),
        description=contract.description,
        inputs=contract.inputs,
        outputs=contract.outputs,
        # A tool's classical part (aligning whole frames, say) may need more context than the net alone.
        padding=max(net_config.receptive_field, contract.padding),
        sources=sources,
        parent=parent,
        training={**config.to_dict(), "dataset": data.dataset, "world_size": world_size},
        metrics=metrics,
    )
