"""The whole chain behind one output frame: its provenance record (what ``plateforge provenance``
prints), the model that made it as the index knows it, and each ancestor through fine-tunes and
base models, every one with its sources, licences and contributors."""

from __future__ import annotations

import os
from typing import Any

from plateforge.errors import UsageError
from plateforge.exr import read_exr_header
from plateforge.lineage._db import Database
from plateforge.provenance import from_attributes

__all__ = ["frame_chain"]


def _model(db: Database, sha256: str, name: str | None, version: str | None) -> dict[str, Any] | None:
    """The model of that weights hash (and name and version, when known: a fine-tune that never
    beat its start has its parent's weights under its own name)."""
    rows = db.execute(
        "SELECT owner, name, version, tool, arch, created, parent_sha256, parent_name, parent_version, base_sha256, "
        "base_name, base_licence FROM models WHERE sha256 = ? ORDER BY owner",
        (sha256,),
    )
    if name is not None:
        rows = [r for r in rows if (r[1], r[2]) == (name, version)]
    if not rows:
        return None
    owner, name, version, tool, arch, created, parent, parent_name, parent_version, base, base_name, base_licence = (
        rows[0]
    )
    sources = []
    for source, sha, licence, holder in db.execute(
        "SELECT source, sha256, licence, rights_holder FROM model_sources WHERE owner = ? ORDER BY source", (owner,)
    ):
        people = db.execute(
            "SELECT name, role FROM model_contributors WHERE owner = ? AND source_sha256 = ? ORDER BY name, role",
            (owner, sha),
        )
        sources.append(
            {
                "path": source,
                "sha256": sha,
                "licence": licence,
                "rights_holder": holder,
                "contributors": [{"name": n, "role": r} for n, r in people],
            }
        )
    return {
        "name": name,
        "version": version,
        "tool": tool,
        "arch": arch,
        "created": created,
        "sha256": sha256,
        "folders": [r[0] for r in rows],
        "parent": {"name": parent_name, "version": parent_version, "sha256": parent} if parent else None,
        "base_model": {"name": base_name, "licence": base_licence, "sha256": base} if base else None,
        "sources": sources,
    }


def frame_chain(db: Database, path: str) -> dict[str, Any]:
    """``{"frame": path, "provenance": {...}, "models": [the model, its parent, …]}``; a model
    the index does not hold appears as ``{"sha256": …, "indexed": false}`` and ends the chain."""
    parts = read_exr_header(path)
    record = from_attributes(parts[0].attributes) if parts else {}
    if not record.get("model"):
        raise UsageError(f"'{path}' carries no plateforge provenance: no plateforge model made it")
    chain: list[dict[str, Any]] = []
    link: dict[str, Any] | None = {
        "sha256": record.get("modelHash", ""),
        "name": record["model"],
        "version": record.get("modelVersion", ""),
    }
    seen: set[tuple[str, str | None, str | None]] = set()
    while link and link["sha256"]:
        # A base model (a diffusers pipeline) has no version: matched by its hash alone.
        key = (link["sha256"], link.get("name") if "version" in link else None, link.get("version"))
        if key in seen:
            break
        seen.add(key)
        model = _model(db, *key)
        if model is None:
            chain.append({"sha256": link["sha256"], "name": link.get("name", ""), "indexed": False})
            break
        chain.append(model)
        link = model["parent"] or model["base_model"]
    contributors = sorted(
        {(c["name"], c["role"]) for model in chain for s in model.get("sources", []) for c in s["contributors"]}
    )
    return {
        "frame": os.path.abspath(path),
        "provenance": record,
        "models": chain,
        "contributors": [{"name": n, "role": r} for n, r in contributors],
    }
