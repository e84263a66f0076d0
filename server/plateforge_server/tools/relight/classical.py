"""relight-classical: carries a relight or a grade from a few keyframe pairs to any frame of the shot.

The classical relight/look transfer, with no learned weights: the artist relights or grades a
few keyframes by hand, and the tool fits one *global* colour transform to those before -> after
pairs and applies it to the plate.

* **Inputs.** ``plate`` (the frame to change) and up to :data:`MAX_KEYS` keyframe pairs as
  inputs ``key_before_1`` / ``key_after_1`` (required) … ``key_before_8`` / ``key_after_8``. Each
  is one static frame, so any host (and ``plateforge process``) can send them with the ordinary
  contract: an input per node connection, all sharing the plate's windows (the server refuses
  keys of another size, naming the input). Numbered inputs rather than one multi-frame input
  because the contract's multi-frame inputs are *neighbours of the target* (``temporal_radius``):
  a host sends frames target±r, while keyframes sit anywhere in the shot.
* **Fit.** A 3x4 affine transform (``after = M @ [R, G, B, 1]``) by least squares in
  scene-linear over every key pixel (on a regular subsample of at most :data:`_FIT_SAMPLES`
  pixels), with a tiny ridge toward the identity so a degenerate key (one flat colour) still
  gives a sane matrix. With ``method = "affine+lut"`` a 3D LUT of ``lut_size``\\ ³ points then fits
  what the affine leaves, over the keys' colours: the LUT is indexed by the before colour through
  the ``sign(x) * log1p(|x|)`` shaper (so highlights get lattice points too), each key pixel
  splats its residual onto its 8 lattice neighbours with trilinear weights, and every lattice
  point is the weighted mean of what it received shrunk toward 0 (the affine) by a prior of
  ``lut_prior`` pixels' weight, so colours the keys never show fall back to the affine alone.
* **Apply.** The transform on the plate's R, G, B, each written back in its own pixel type;
  every other channel (A, Z, AOVs) passes through untouched.

Refused, with a message naming the pair: a key with only one half (``key_before_3`` without
``key_after_3``), and a pair whose after is bit-for-bit the before (nothing was changed on it:
usually the wrong node is connected; leaving it in would pull the fit toward "no change").

A global transform cannot move a light: a key light with falloff, or a practical switched on,
changes pixels by *where* they are, not by their colour. That is what the learned relight
(``pairs`` training, optionally with normal/position AOVs) is for; this tool is its baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from plateforge.errors import FrameError
from plateforge.frames import Frame
from plateforge.models import InputSpec, ModelInfo, OutputSpec, ParamSpec
from plateforge_server.tools.base import ToolCall, cast_like, passthrough_channels

__all__ = [
    "INFO",
    "MAX_KEYS",
    "ColourTransform",
    "fit_transform",
    "key_pairs",
    "load",
    "run",
]

#: Keyframe pairs a call may bring.
MAX_KEYS = 8
_RGB = ("R", "G", "B")
#: Key pixels the fit reads at most (a regular subsample beyond this: the fit is global).
_FIT_SAMPLES = 1 << 18
#: Weight of the pull toward the identity, relative to the pixels' own (per pixel of the fit).
_RIDGE = 1e-6


def _key_inputs() -> tuple[InputSpec, ...]:
    specs = []
    for k in range(1, MAX_KEYS + 1):
        required = k == 1
        specs.append(
            InputSpec(
                f"key_before_{k}",
                f"Keyframe pair {k}: the plate at a keyframe, before the artist's change"
                + ("." if required else " (optional)."),
                required=required,
                channels=_RGB,
            )
        )
        specs.append(
            InputSpec(
                f"key_after_{k}",
                f"Keyframe pair {k}: the same frame after the artist's relight or grade.",
                required=required,
                channels=_RGB,
            )
        )
    return tuple(specs)


INFO = ModelInfo(
    name="relight-classical",
    version="1",
    tool="relight",
    description=(
        "Carries a relight or grade from 1 to 8 keyframe pairs (before -> after) to the plate: fits one global "
        "colour transform (3x4 affine, optionally refined by a 3D LUT) on the pairs in scene-linear. Cannot move "
        "a light (use a learned relight for that). Channels other than R, G, B pass through."
    ),
    inputs=(InputSpec("plate", "The plate to relight or grade.", channels=_RGB), *_key_inputs()),
    outputs=(OutputSpec("image", "The plate with the fitted transform applied to R, G, B; all else unchanged.", _RGB),),
    parameters=(
        ParamSpec(
            "method",
            "choice",
            "affine",
            label="Transform",
            description="A 3x4 affine colour matrix, or the matrix refined by a 3D LUT fitted on the keys' colours.",
            choices=("affine", "affine+lut"),
        ),
        ParamSpec(
            "lut_size",
            "int",
            17,
            label="LUT size",
            description="Lattice points per axis of the 3D LUT (affine+lut only).",
            minimum=2,
            maximum=65,
        ),
        ParamSpec(
            "lut_prior",
            "float",
            4.0,
            label="LUT prior",
            description="Pixels' worth of weight pulling each LUT point toward the affine fit (more: smoother).",
            minimum=0.0,
            maximum=1e6,
        ),
    ),
    provenance="no learned weights; least-squares colour transform fitted on the call's keyframe pairs",
)


@dataclass(frozen=True)
class _State:
    device: str


def load(*, device: str) -> _State:
    return _State(device=device)


# -- the fit -------------------------------------------------------------------------------------


def _encode(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.sign(x) * np.log1p(np.abs(x)), dtype=np.float64)


@dataclass(frozen=True)
class ColourTransform:
    """A fitted global colour transform: ``affine`` (3x4), plus an optional residual LUT."""

    affine: np.ndarray
    #: ``(n, n, n, 3)`` residuals (linear) on a lattice over the shaped before colours, or None.
    lut: np.ndarray | None = None
    #: Per channel, the shaped (encoded) domain the LUT spans: ``(3,)`` lows and highs.
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The transform on ``(..., 3)`` scene-linear values; float32."""
        flat = rgb.reshape(-1, 3).astype(np.float64)
        out = flat @ self.affine[:, :3].T + self.affine[:, 3]
        if self.lut is not None and self.lo is not None and self.hi is not None:
            index, weights = _lattice(flat, self.lo, self.hi, self.lut.shape[0])
            out += np.einsum("nk,nkc->nc", weights, self.lut.reshape(-1, 3)[index])
        result: np.ndarray = out.reshape(rgb.shape).astype(np.float32)
        return result


def _lattice(flat: np.ndarray, lo: np.ndarray, hi: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the flat indices of its 8 lattice neighbours and their trilinear weights."""
    scaled = (_encode(flat) - lo) / np.maximum(hi - lo, 1e-12) * (size - 1)
    scaled = np.clip(scaled, 0.0, size - 1)
    base = np.minimum(np.floor(scaled).astype(np.int64), size - 2)
    frac = scaled - base
    index = np.empty((len(flat), 8), np.int64)
    weights = np.empty((len(flat), 8), np.float64)
    for corner in range(8):
        offset = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        at = base + offset
        index[:, corner] = (at[:, 0] * size + at[:, 1]) * size + at[:, 2]
        weights[:, corner] = np.prod(np.where(offset == 1, frac, 1.0 - frac), axis=1)
    return index, weights


def fit_transform(
    befores: Sequence[np.ndarray],
    afters: Sequence[np.ndarray],
    *,
    lut_size: int | None = None,
    lut_prior: float = 4.0,
) -> ColourTransform:
    """Fit before -> after over the keys (``(H, W, 3)`` scene-linear each); a LUT when ``lut_size``."""
    before = np.concatenate([b.reshape(-1, 3) for b in befores]).astype(np.float64)
    after = np.concatenate([a.reshape(-1, 3) for a in afters]).astype(np.float64)
    keep = np.isfinite(before).all(axis=1) & np.isfinite(after).all(axis=1)
    before, after = before[keep], after[keep]
    if len(before) > _FIT_SAMPLES:
        step = -(-len(before) // _FIT_SAMPLES)
        before, after = before[::step], after[::step]
    design = np.concatenate([before, np.ones((len(before), 1))], axis=1)
    ridge = _RIDGE * len(before)
    identity = np.eye(4)[:, :3]  # (4, 3): the identity's coefficients
    gram = design.T @ design + ridge * np.eye(4)
    coefficients = np.linalg.solve(gram, design.T @ after + ridge * identity)
    affine = coefficients.T  # (3, 4)
    if not lut_size:
        return ColourTransform(affine)
    residual = after - (before @ affine[:, :3].T + affine[:, 3])
    shaped = _encode(before)
    lo, hi = shaped.min(axis=0), shaped.max(axis=0)
    pad = np.maximum((hi - lo) * 0.01, 1e-6)
    lo, hi = lo - pad, hi + pad
    index, weights = _lattice(before, lo, hi, lut_size)
    cells = lut_size**3
    total = np.bincount(index.ravel(), weights.ravel(), minlength=cells)
    sums = np.stack(
        [np.bincount(index.ravel(), (weights * residual[:, c : c + 1]).ravel(), minlength=cells) for c in range(3)],
        axis=1,
    )
    lut = (sums / (total + lut_prior)[:, None]).reshape(lut_size, lut_size, lut_size, 3)
    return ColourTransform(affine, lut, lo, hi)


# -- the tool ------------------------------------------------------------------------------------


def key_pairs(call: ToolCall) -> list[tuple[int, Frame, Frame]]:
    """The call's keyframe pairs as (pair number, before, after), checked (see the module doc)."""
    found = []
    for k in range(1, MAX_KEYS + 1):
        before_name, after_name = f"key_before_{k}", f"key_after_{k}"
        has_before, has_after = call.has(before_name), call.has(after_name)
        if has_before != has_after:
            given, lacking = (before_name, after_name) if has_before else (after_name, before_name)
            raise FrameError(f"model {call.info.name!r}: keyframe pair {k} has {given!r} but no {lacking!r}")
        if not has_before:
            continue
        before, after = call.frame(before_name), call.frame(after_name)
        same = all(np.array_equal(before.channels[c], after.channels[c]) for c in _RGB)
        if same:
            raise FrameError(
                f"model {call.info.name!r}: keyframe pair {k} is unchanged: {after_name!r} {after.label()} is "
                f"identical to {before_name!r} {before.label()} in R, G, B. Connect the relit or graded frame as "
                "the after, or leave the pair out"
            )
        found.append((k, before, after))
    return found


def run(state: _State, call: ToolCall) -> dict[str, Frame]:
    call.check_cancelled()
    plate = call.frame("plate")
    pairs = key_pairs(call)
    lut = str(call.params.get("method", "affine")) == "affine+lut"
    transform = fit_transform(
        [before.stack(_RGB) for _, before, _ in pairs],
        [after.stack(_RGB) for _, _, after in pairs],
        lut_size=int(call.params.get("lut_size", 17)) if lut else None,
        lut_prior=float(call.params.get("lut_prior", 4.0)),
    )
    call.check_cancelled()
    result = transform.apply(plate.stack(_RGB))
    produced = {name: cast_like(result[:, :, k], plate.channels[name]) for k, name in enumerate(_RGB)}
    return {"image": passthrough_channels(plate, produced)}
