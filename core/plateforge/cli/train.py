"""Train a model on a dataset manifest, as a job on the server, and follow its progress.

  plateforge train --dataset shot.toml --tool cleanup --steps 2000 [--size small] [--name NAME]
                   [--param key=value ...] [--config run.json]
  plateforge train --dataset shot.toml --tool cleanup --minutes 10

--minutes M gives the run a wall-clock budget: training stops after the step that reaches it (with
--steps too, at whichever comes first; without, the budget alone ends it), then the best checkpoint
is chosen and published as usual, and the learning rate's cosine follows the budget.

--init MODEL fine-tunes: the run starts from the weights of MODEL (a plateforge model folder, as
`plateforge train` printed it) instead of a fresh net, as CopyCat's Initial Weights do. MODEL must
be of the same tool, architecture and net size; anything else is refused before training starts.
The new model's card names MODEL as its parent, so `plateforge lineage` follows fine-tunes.

--tool cleanup trains the self-supervised paint-out of a shot (the manifest's plate and mask roles,
a frame sequence: the net learns to correct the classical fill from aligned neighbours); --tool matte
trains the few-shot matte (plate, clean_plate and at least 2 keyframe matte roles: the net learns
to correct the classical difference key); other tools (look, relight ...) train input -> target
pairs. --param sets any training config field (lr=1e-4, crop=256, flips=false ...). The dataset
--input-colorspace NAME says the sources are not scene-linear: the server decodes their R, G, B
from NAME (in the OpenColorIO config: the server's $OCIO, else OCIO's ACES studio config, or the
built-in --ocio ocio://NAME; the server reads no config file a request names) to
the config's scene_linear as it reads them, and the model card records it with the training
config; process the shot's plates with the same --input-colorspace. The dataset
path is read by the server: a relative path is made absolute here, so give a path the server can
see. Ctrl-C detaches without cancelling; the line printed then says how to re-attach (plateforge
job watch ID). Without --server a private local server runs the job, and stopping this command
stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from plateforge.cli.common import add_server_arguments, connect
from plateforge.cli.job import describe, watch
from plateforge.cli.progress import add_quiet_argument
from plateforge.errors import UsageError
from plateforge.jobs_client import TrainingClient
from plateforge.models import ParamValue, parse_param

__all__ = ["main", "parse_param"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plateforge train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True, metavar="TOML", help="dataset manifest (plateforge.dataset/1)")
    parser.add_argument("--tool", required=True, help="cleanup, look, matte, relight ...")
    parser.add_argument("--steps", type=int, help="optimiser steps (default: the config's 2000)")
    parser.add_argument(
        "--minutes", type=float, help="wall-clock training budget in minutes (with --steps: whichever ends first)"
    )
    parser.add_argument("--size", help="net size: small, medium or large (default small)")
    parser.add_argument("--name", default="", help="the exported model's name (default: DATASET-TOOL)")
    parser.add_argument("--model-version", default="", help="the exported model's version (default: stepN)")
    parser.add_argument(
        "--init", metavar="MODEL", help="fine-tune from this plateforge model folder's weights (same tool and net)"
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a training config field; repeatable"
    )
    parser.add_argument(
        "--input-colorspace",
        metavar="NAME",
        help="the sources' OpenColorIO colour space (sRGB, a log or camera space): decoded to scene-linear on "
        "read; needed for integer sources (default: already linear)",
    )
    parser.add_argument(
        "--ocio",
        metavar="CONFIG",
        help="an OpenColorIO built-in config, ocio://NAME (default: the server's $OCIO, else the ACES studio config)",
    )
    parser.add_argument("--config", metavar="JSON", help="a JSON file of training config fields (--param wins)")
    parser.add_argument("--detach", action="store_true", help="start the job and return without watching it")
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard event files (loss, validation PSNR, preview) in the job's train/tensorboard/",
    )
    add_quiet_argument(parser)
    add_server_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    params: dict[str, ParamValue] = dict(parse_param(p) for p in args.param)
    if args.steps is not None:
        params["steps"] = args.steps
    if args.minutes is not None:
        if not args.minutes > 0:
            raise UsageError(f"--minutes must be a number of minutes above 0, got {args.minutes!r}")
        params["minutes"] = args.minutes
    if args.size:
        params["size"] = args.size
    if args.input_colorspace:
        params["input_colorspace"] = args.input_colorspace
    if args.ocio:
        params["ocio_config"] = args.ocio
    if args.init:
        # Read by the server: absolute, as the dataset path is. The server checks it is a model.
        params["init"] = os.path.abspath(args.init)
    if args.tensorboard:
        params["tensorboard"] = True
    config: dict[str, Any] | None = None
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as handle:
                config = json.load(handle)
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot read the training config {args.config}: {error}") from None
        if not isinstance(config, dict):
            raise UsageError(f"{args.config}: a training config is a JSON object of fields")
    with connect(args, quiet=args.quiet) as client:
        jobs = TrainingClient(client)
        job = jobs.start_training(
            dataset=os.path.abspath(args.dataset),
            tool=args.tool,
            params=params,
            config=config,
            model_name=args.name,
            model_version=args.model_version,
        )
        budget = f", at most {args.minutes:g} minutes" if args.minutes is not None else ""
        if not args.quiet:
            pictures = os.path.join(job.job_dir, "train")
            print(f"job {job.id} queued ({job.steps} steps{budget})", file=sys.stderr, flush=True)
            print(f"  its loss chart and preview, as it trains: {pictures}/loss.png, preview.png", file=sys.stderr)
        if args.detach:
            print(job.id)
            return 0
        code = watch(jobs, job.id, server=client.address, quiet=args.quiet)
        final = jobs.get(job.id)
        if final.model_dir:
            print(final.model_dir)
        elif code != 130:
            print(describe(final), file=sys.stderr)
        return code
