"""The models this server offers, loaded lazily.

In v1 the registry holds the built-in tool modules (``plateforge.server.tools.BUILTIN``). A tool's
state (weights, caches) is built by its ``load`` on first use, once, under a lock, so a server
that offers many models starts fast and pays only for what is used.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from plateforge.errors import UnknownModelError
from plateforge.models import ModelInfo
from plateforge.server.tools import BUILTIN
from plateforge.server.tools.base import ToolModule, as_tool_module

__all__ = ["LoadedModel", "Registry"]


@dataclass
class LoadedModel:
    tool: ToolModule
    #: sha256 of what defines the model's behaviour: weights for learned models, source for
    #: classical ones. Written into every output's provenance.
    model_hash: str
    state: Any = None
    loaded: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def info(self) -> ModelInfo:
        return self.tool.info


class Registry:
    """Name (and version) -> model, with lazy loading."""

    def __init__(self, modules: Iterable[str] = BUILTIN, *, device: str = "cpu") -> None:
        self.device = device
        self._models: dict[tuple[str, str], LoadedModel] = {}
        for name in modules:
            module = importlib.import_module(name)
            tool = as_tool_module(module)
            digest = hashlib.sha256(inspect.getsource(module).encode()).hexdigest()
            self._models[(tool.info.name, tool.info.version)] = LoadedModel(tool, digest)

    def infos(self) -> list[ModelInfo]:
        return [m.info for m in self._models.values()]

    def get(self, name: str, version: str = "") -> LoadedModel:
        matches = [m for (n, v), m in self._models.items() if n == name and (not version or v == version)]
        if not matches:
            served = sorted(f"{n}@{v}" for n, v in self._models)
            wanted = f"{name}@{version}" if version else name
            raise UnknownModelError(f"no model {wanted!r} on this server; it serves {served}")
        model = max(matches, key=lambda m: _version_key(m.info.version))
        with model.lock:
            if not model.loaded:
                model.state = model.tool.load(device=self.device)
                model.loaded = True
        return model


def _version_key(version: str) -> tuple[int | str, ...]:
    return tuple(int(p) if p.isdigit() else p for p in version.split("."))
