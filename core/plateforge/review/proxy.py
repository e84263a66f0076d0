"""Output EXRs to signed review proxies: the path behind ``plateforge proxy``.

Each EXR is read, its R, G, B taken through the OpenColorIO display/view transform (a frame
without colour, a matte, is shown as grey: it is data, not light), written as an 8-bit still
(and gathered into one MP4 when asked) and signed. What the signature states comes from the
EXR's own provenance (model, version, hash, tool) and, when the model's folder is found under
the models directory, from its card (licences, rights holders, contributors, base model).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from plateforge.errors import ModelIntegrityError, UsageError
from plateforge.exr import read_exr, sha256_file
from plateforge.frames import Frame
from plateforge.modelcards import CARD_FILE, read_model_card
from plateforge.provenance import from_attributes
from plateforge.review.colour import RGB, to_display
from plateforge.review.media import mime_type, to_8bit, write_movie, write_still
from plateforge.review.signing import Credentials, SigningKey, SourceType, sign_proxy, sign_sidecar

__all__ = ["ProxyJob", "ProxyResult", "card_facts", "make_proxies"]

#: Provenance keys of the EXR that name the model, carried into the signed lineage.
_MODEL_KEYS = ("model", "modelVersion", "modelHash", "tool", "device", "precision", "inputColorspace")


@dataclass(kw_only=True)
class ProxyJob:
    """Which EXRs, where the proxies go, through which display transform, signed with what."""

    exrs: Sequence[str]
    out_dir: str
    #: Still format: "png" or "jpg" ("" : no stills, only the movie).
    still: str = "png"
    #: A movie file to gather every frame into ("" : none).
    movie: str = ""
    fps: int = 24
    ocio: str | None = None
    colorspace: str | None = None
    display: str = ""
    view: str = ""
    part: str | None = None
    key: SigningKey | None = None
    #: Also write a detached ``EXR.c2pa`` manifest beside each source EXR.
    sidecars: bool = True
    models_dir: str | None = None
    source_type: SourceType = "composite"


@dataclass
class ProxyResult:
    proxies: list[Path] = field(default_factory=list)
    sidecars: list[Path] = field(default_factory=list)


def _display_rgb(frame: Frame, path: str) -> tuple[np.ndarray, bool]:
    """(H, W, 3) float32 to show, and whether it is light (to go through the display transform)."""
    if all(c in frame.channels for c in RGB):
        return frame.stack(list(RGB)), True
    names = ["A"] if "A" in frame.channels else list(frame.channels)
    if len(names) != 1:
        raise UsageError(
            f"{path}: no R, G, B and {len(names)} other channels {sorted(frame.channels)}; nothing to show"
        )
    grey = frame.stack(names)
    return np.repeat(grey, 3, axis=-1), False


def card_facts(record: Mapping[str, str], models_dir: str | None) -> dict[str, Any]:
    """Licences, rights holders, contributors and base model from the card of the model an EXR
    names, when ``models_dir/NAME/VERSION/`` holds it; nothing when it does not (a built-in
    classical tool, or a model not installed here)."""
    name, version = record.get("model", ""), record.get("modelVersion", "")
    if not (models_dir and name and version):
        return {}
    folder = Path(models_dir) / name / version
    if not (folder / CARD_FILE).is_file():
        return {}
    card = read_model_card(folder, verify=True)
    served = record.get("modelHash", "")
    if served and card.get("weights_sha256") and served != card["weights_sha256"]:
        raise ModelIntegrityError(
            f"{folder} holds {name}@{version} with weights sha256 {card['weights_sha256']}, but the frames were "
            f"made by weights {served}: that folder is another model; point --models-dir at the one used"
        )
    sources = card.get("sources", [])
    contributors: list[dict[str, str]] = []
    for source in sources:
        for person in source.get("contributors", []) or []:  # absent from cards made before contributors
            entry = (
                {str(k): str(v) for k, v in person.items()} if isinstance(person, Mapping) else {"name": str(person)}
            )
            if entry not in contributors:
                contributors.append(entry)
    return {
        "licences": sorted({str(s["licence"]) for s in sources}),
        "rights_holders": sorted({str(s["rights_holder"]) for s in sources}),
        "contributors": contributors,
        "base_model": card.get("base_model"),
    }


def _write_signed(
    target: Path, key: SigningKey | None, credentials: Credentials, write: Callable[[Path], object]
) -> None:
    """``write`` the proxy, then (with a key) sign it into ``target``: the unsigned file lives
    under a hidden name until then, so a failed signature leaves no unsigned proxy behind."""
    if key is None:
        write(target)
        return
    unsigned = target.with_name(f".{target.stem}.unsigned{target.suffix}")
    try:
        write(unsigned)
        sign_proxy(unsigned, dest=target, mime_type=mime_type(target), credentials=credentials, key=key)
    finally:
        unsigned.unlink(missing_ok=True)


def make_proxies(job: ProxyJob) -> ProxyResult:
    """Write (and sign, with ``job.key``) a proxy per EXR and the movie; see the module doc."""
    if not job.exrs:
        raise UsageError("no EXR files to make proxies of")
    if not job.still and not job.movie:
        raise UsageError("nothing to write: ask for stills (--format) or a movie (--movie)")
    if job.movie:
        mime_type(job.movie)
    result = ProxyResult()
    movie_frames: list[np.ndarray] = []
    sources: list[tuple[str, str]] = []
    first: Credentials | None = None
    os.makedirs(job.out_dir, exist_ok=True)
    for path in job.exrs:
        frame = read_exr(path, part=job.part)
        record = from_attributes(frame.attributes)
        rgb, light = _display_rgb(frame, path)
        display: dict[str, str] = {}
        if light:
            rgb, display = to_display(
                rgb, config=job.ocio, colorspace=job.colorspace, display=job.display, view=job.view
            )
        pixels = to_8bit(rgb)
        digest = sha256_file(path)
        name = os.path.basename(path)
        sources.append((name, digest))
        credentials = Credentials(
            title=name,
            sources=[(name, digest)],
            source_type=job.source_type,
            model={k: record[k] for k in _MODEL_KEYS if k in record},
            display=display,
            **card_facts(record, job.models_dir),
        )
        first = first or credentials
        if job.still:
            target = Path(job.out_dir) / f"{Path(name).stem}.{job.still}"
            if target in result.proxies:
                raise UsageError(f"two EXRs named {name} would both make {target}; make their proxies separately")
            _write_signed(target, job.key, credentials, functools.partial(write_still, pixels=pixels))
            result.proxies.append(target)
        if job.movie:
            movie_frames.append(pixels)
        if job.key is not None and job.sidecars:
            sidecar_credentials = dataclasses.replace(credentials, display={})
            result.sidecars.append(sign_sidecar(path, credentials=sidecar_credentials, key=job.key))
    if job.movie and first is not None:
        movie = Path(job.movie)
        credentials = dataclasses.replace(first, title=movie.name, sources=sources)
        _write_signed(movie, job.key, credentials, functools.partial(write_movie, frames=movie_frames, fps=job.fps))
        result.proxies.append(movie)
    return result
