"""Seconds per frame of learned-model inference, per model size and resolution, as JSON.

Each U-Net preset (RGB in, RGB out, residual, random weights: speed does not depend on what a net
has learned) runs over a scene-linear frame the way a served model does: encoded, cut into
overlapping tiles with the exact overlap (twice the receptive field), batched, blended and
decoded (``run_on_frame_arrays``). The baseline in the same run is one untiled forward pass of
the same net over the same frame, so ``tiled_vs_untiled`` is what tiling costs; untiled passes
that would not fit in memory are skipped and say so. On CUDA the tiled pass runs in fp16.

``onnxruntime`` is the same net exported as ``plateforge export --format onnx`` writes it (the
per-frame function: encode, the net with its stride padding, decode; one whole frame) run by
onnxruntime's CPU provider in the same run, with its largest difference from the server's path
(``max_abs_vs_server``, float32 on the CPU; on CUDA the server's fp16 makes it larger).

  python bench/inference.py [--sizes small,medium,large] [--resolutions 1080p,4k] [--repeats N]
  python bench/inference.py --quick        # a tiny frame, small preset: checks the plumbing
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from plateforge_server.device import pick_device
from plateforge_server.export.functions import ChannelGroup, FrameFunction
from plateforge_server.export.onnx_writer import onnx_bytes
from plateforge_server.inference.tiling import run_on_frame_arrays
from plateforge_server.nets.unet import SIZES, UNet, UNetConfig, decode, encode

RESOLUTIONS = {"1080p": (1080, 1920), "4k": (2160, 4096), "quick": (96, 160)}
#: An untiled pass is skipped when its full-resolution activations would pass this (a rough
#: estimate: eight live float32 feature maps of the first level's width).
UNTILED_LIMIT_BYTES = 6 * 1024**3


def _timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up: allocator, oneDNN kernel selection, cudnn autotune
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return times


def measure(size: str, resolution: str, *, repeats: int, tile: int, device: str) -> dict[str, Any]:
    height, width = RESOLUTIONS[resolution]
    config = UNetConfig.preset(size, in_channels=3, out_channels=3, residual_from=(0, 1, 2))
    net = UNet(config, seed=0).to(device).eval()
    planes = np.random.default_rng(0).uniform(0.0, 2.0, (height, width, 3)).astype(np.float16)
    dtype = torch.float16 if device.startswith("cuda") else None
    tiled = _timed(lambda: run_on_frame_arrays(net, planes, tile=tile, device=device, dtype=dtype), repeats)
    result: dict[str, Any] = {
        "width": width,
        "height": height,
        "parameters": sum(p.numel() for p in net.parameters()),
        "receptive_field": config.receptive_field,
        "tile": tile,
        "tiled": {"median_s": round(statistics.median(tiled), 4), "min_s": round(min(tiled), 4)},
    }
    if config.widths[0] * height * width * 4 * 8 <= UNTILED_LIMIT_BYTES:

        def untiled() -> None:
            with torch.inference_mode():
                x = torch.from_numpy(planes.astype(np.float32)).permute(2, 0, 1)[None].to(device)
                decode(net(encode(x))).cpu()

        try:
            whole = _timed(untiled, repeats)
        except (RuntimeError, MemoryError) as error:  # out of memory: report, don't fail the run
            result["untiled"] = {"skipped": f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"}
        else:
            result["untiled"] = {"median_s": round(statistics.median(whole), 4), "min_s": round(min(whole), 4)}
            result["tiled_vs_untiled"] = round(statistics.median(tiled) / statistics.median(whole), 3)
    else:
        result["untiled"] = {"skipped": f"activations over {UNTILED_LIMIT_BYTES >> 30} GiB in one pass"}
    result["onnxruntime"] = _onnxruntime(config, planes, repeats=repeats, tile=tile)
    return result


def _onnxruntime(config: UNetConfig, planes: np.ndarray, *, repeats: int, tile: int) -> dict[str, Any]:
    """The exported per-frame function under onnxruntime (CPU), timed, and its difference from
    the server's torch path on the CPU in float32."""
    import onnxruntime as ort

    rgb = ("R", "G", "B")
    net = UNet(config, seed=0).eval()  # the same weights, on the CPU, float32
    function = FrameFunction(
        net, kind="pairs", inputs=(ChannelGroup("plate", rgb, ""),), outputs=(ChannelGroup("image", rgb, ""),)
    )
    example = torch.rand(1, 3, 37, 40, generator=torch.Generator().manual_seed(0))
    data = onnx_bytes(function, [example], input_names=["input"], output_names=["output"], metadata={}, doc="")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(planes.astype(np.float32).transpose(2, 0, 1)[None])
    times = _timed(lambda: session.run(None, {"input": x}), repeats)
    exported = session.run(None, {"input": x})[0][0].transpose(1, 2, 0)
    served = run_on_frame_arrays(net, planes, tile=tile, device="cpu")
    return {
        "provider": "CPUExecutionProvider",
        "onnxruntime": ort.__version__,
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "max_abs_vs_server": float(np.abs(exported - served).max()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="small,medium", help=f"presets among {sorted(SIZES)} (default small,medium)")
    parser.add_argument("--resolutions", default="1080p", help="1080p and/or 4k (default 1080p)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up (default 3)")
    parser.add_argument("--tile", type=int, default=512, help="tile size in pixels (default 512)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    parser.add_argument("--quick", action="store_true", help="one tiny frame with the small preset")
    args = parser.parse_args(argv)
    sizes = ["small"] if args.quick else [s for s in args.sizes.split(",") if s]
    resolutions = ["quick"] if args.quick else [r for r in args.resolutions.split(",") if r]
    unknown = [s for s in sizes if s not in SIZES] + [r for r in resolutions if r not in RESOLUTIONS]
    if unknown:
        parser.error(f"unknown sizes or resolutions {unknown}; sizes {sorted(SIZES)}, resolutions 1080p, 4k")
    device = pick_device(args.device)
    tile = 128 if args.quick else args.tile  # the small preset needs tiles over 95 px for exact overlap
    results: dict[str, dict[str, Any]] = {}
    for size in sizes:
        for resolution in resolutions:
            print(f"{size} @ {resolution} …", file=sys.stderr, flush=True)
            results[f"{size}_{resolution}"] = measure(
                size, resolution, repeats=max(1, args.repeats), tile=tile, device=device
            )
    settings = {
        "device": device,
        "dtype": "float16" if device.startswith("cuda") else "float32",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "repeats": args.repeats,
        "quick": args.quick,
    }
    print(json.dumps({"settings": settings, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
