"""A processing call and its result, as plain Python on both sides of the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from plateforge.frames import Frame
from plateforge.models import ParamValue

__all__ = [
    "CHUNK_BYTES",
    "MAX_MESSAGE_BYTES",
    "PRECISIONS",
    "UNARY_LIMIT_BYTES",
    "Precision",
    "ProcessCall",
    "ProcessResult",
]

#: Arithmetic a learned model runs in: "auto" lets the server choose (fp16 on a GPU, fp32 on the
#: CPU); "fp32" asks for float32 everywhere, so GPU and CPU workers of one farm job agree.
Precision = Literal["auto", "fp32"]
PRECISIONS: tuple[Precision, ...] = ("auto", "fp32")

#: gRPC message limit on both ends: one 4K (4096x2160) float RGBA frame is 141.6 MB; the rest is
#: headroom for the request's other fields. Anything bigger goes through ProcessStream.
MAX_MESSAGE_BYTES = 160 * 1024 * 1024

#: Above this many pixel bytes the client streams even when unary would fit. Round trips through
#: passthrough measured here (RGBA half, unary vs stream): 0.26 MB 2.2 vs 3.9 ms, 1 MB 8.3 vs
#: 5.1 ms, 4 MB 33 vs 14 ms, 16.6 MB 94 vs 38 ms: gRPC Python handles one big message far worse
#: than a run of 2 MiB ones, and streaming also keeps peak memory lower on both ends.
UNARY_LIMIT_BYTES = 512 * 1024

#: Size of one DataChunk. Large enough that per-message overhead is small, small enough that
#: a receiver's copy of one chunk stays in cache.
CHUNK_BYTES = 2 * 1024 * 1024


@dataclass
class ProcessCall:
    """One request: produce ``target_frame`` with ``model`` from the named input frames."""

    model: str
    inputs: dict[str, list[Frame]]
    params: dict[str, ParamValue] = field(default_factory=dict)
    version: str = ""
    target_frame: int | None = None
    sanitize_non_finite: bool = False
    precision: Precision = "auto"
    #: Facts a receiver learned while the pixels arrived, so nobody passes over them again.
    #: Pixel digests (provenance.pixels_digest) of some frames, by (input name, index in its list).
    pixel_digests: dict[tuple[str, int], str] = field(default_factory=dict)
    #: Channels holding NaN/Inf, by (input name, index), for every frame; None: not scanned.
    non_finite: dict[tuple[str, int], list[str]] | None = None

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for frames in self.inputs.values() for f in frames)


@dataclass
class ProcessResult:
    """Named output frames and the provenance record to write into their headers."""

    outputs: dict[str, Frame]
    provenance: dict[str, str] = field(default_factory=dict)
