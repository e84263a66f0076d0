"""The models this server offers, loaded lazily, unloaded least-recently-used first.

Two kinds of model are served:

* the built-in tool modules (``plateforge_server.tools.BUILTIN``), imported by name; their model
  hash is the sha256 of their source;
* trained models in a models directory, one folder per model and version,
  ``<models_dir>/<name>/<version>/`` holding ``model.safetensors`` and ``card.json``, served
  through :func:`plateforge_server.tools.learned.tool_module_for`; their model hash is the card's
  ``weights_sha256``. The directory is scanned when the registry starts and on :meth:`Registry.refresh`;
  a folder whose card cannot be read is skipped with a warning naming it, so one broken model
  never stops the server.

A model's state (weights, caches) is built by its tool's ``load`` on first use, once, under a
per-model lock (other models load and run meanwhile). Loaded learned models count their parameter
bytes against ``memory_budget_bytes``: when loading one would exceed it, the least recently used
learned models that no call is using are unloaded first. Built-in tools count as 0 bytes.

Every use is counted: :meth:`Registry.use` (a context manager) and :meth:`Registry.get` hand out a
:class:`LoadedModel` that holds the state it was given and pins the model until it is released
(``release()``, the end of the ``with`` block, or the handle being dropped), so a model is never
unloaded under a running call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import itertools
import logging
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plateforge.errors import PlateforgeError, UnknownModelError
from plateforge.modelcards import CARD_FILE
from plateforge.models import ModelInfo, version_key
from plateforge.provenance import MODEL_HASH_ATTRIBUTE
from plateforge_server.tools import BUILTIN
from plateforge_server.tools.base import ToolModule, as_tool_module, recording_compute

__all__ = ["LoadedModel", "Registry"]

log = logging.getLogger("plateforge_server")


@dataclass(eq=False)
class LoadedModel:
    """One use of a loaded model: its tool, hash and state, pinned until released."""

    tool: ToolModule
    #: sha256 of what defines the model's behaviour: weights for learned models, source for
    #: classical ones. Written into every output's provenance.
    model_hash: str
    state: Any = None
    loaded: bool = True
    #: The model folder of a learned model; None for a built-in tool.
    folder: Path | None = None
    _finalizer: weakref.finalize[Any, Any] | None = field(default=None, repr=False)

    @property
    def info(self) -> ModelInfo:
        return self.tool.info

    def release(self) -> None:
        """End this use (idempotent): the model may be unloaded again once no use holds it."""
        if self._finalizer is not None:
            self._finalizer()


@dataclass(eq=False)
class _Entry:
    """A served model as the registry keeps it."""

    tool: ToolModule
    model_hash: str
    #: The model folder of a learned model; None for a built-in tool.
    folder: Path | None = None
    state: Any = None
    loaded: bool = False
    #: Bytes counted against the budget while loaded (0 for built-in tools).
    size: int = 0
    #: Uses not yet released (calls running it, or loading it).
    users: int = 0
    #: When it was last handed out (a counter, larger is more recent).
    last_used: int = 0
    #: Serialises loading this model; the registry lock is never held while a model loads.
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def info(self) -> ModelInfo:
        return self.tool.info

    @property
    def key(self) -> tuple[str, str]:
        return self.tool.info.name, self.tool.info.version


class Registry:
    """Name (and version) -> model, with lazy loading and a memory budget for learned models."""

    def __init__(
        self,
        modules: Iterable[str] = BUILTIN,
        *,
        device: str = "cpu",
        models_dir: Path | None = None,
        memory_budget_bytes: int | None = None,
    ) -> None:
        """``memory_budget_bytes``: the most bytes of loaded learned models (None: no limit)."""
        self.device = device
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.memory_budget_bytes = memory_budget_bytes
        # Re-entrant: a dropped handle's finaliser may run (and release) wherever the GC runs.
        self._lock = threading.RLock()
        self._clock = itertools.count(1)
        self._models: dict[tuple[str, str], _Entry] = {}
        for name in modules:
            module = importlib.import_module(name)
            tool = as_tool_module(module)
            digest = hashlib.sha256(inspect.getsource(module).encode()).hexdigest()
            self._models[(tool.info.name, tool.info.version)] = _Entry(recording_compute(tool, device=device), digest)
        self._builtin = frozenset(self._models)
        self.refresh()

    # -- what is served ------------------------------------------------------------------------

    def refresh(self) -> list[tuple[str, str]]:
        """Scan the models directory again; return the (name, version) of learned models served.

        New folders are added, folders gone (or whose card now names other weights) are dropped or
        replaced, unchanged models keep their loaded state. A folder whose card cannot be read is
        skipped with a warning naming it. Calls already holding a dropped model finish with it.
        """
        found = self._scan()
        with self._lock:
            learned = {k: e for k, e in self._models.items() if k not in self._builtin}
            for key, entry in learned.items():
                fresh = found.get(key)
                if fresh is None or fresh.folder != entry.folder or fresh.model_hash != entry.model_hash:
                    del self._models[key]
            for key, fresh in found.items():
                if key not in self._models:
                    self._models[key] = fresh
            return sorted(k for k in self._models if k not in self._builtin)

    def _scan(self) -> dict[tuple[str, str], _Entry]:
        """Every readable ``<models_dir>/<name>/<version>/card.json``, as entries not yet loaded."""
        from plateforge_server.tools.learned import tool_module_for  # torch: only when models are served

        root = self.models_dir
        if root is None:
            return {}
        if not root.is_dir():
            if root.exists():
                log.warning("models directory %s is not a directory; serving no trained models", root)
            else:
                log.info("models directory %s does not exist; serving no trained models", root)
            return {}
        found: dict[tuple[str, str], _Entry] = {}
        try:
            folders = _model_folders(root)
        except OSError as exc:
            log.warning("cannot read models directory %s (%s); serving no trained models", root, exc)
            return {}
        for folder in folders:
            try:
                tool = tool_module_for(folder)
            except (PlateforgeError, OSError, ValueError) as exc:
                log.warning("skipping model folder %s: %s", folder, exc)
                continue
            key = (tool.info.name, tool.info.version)
            if key in self._builtin:
                log.warning("skipping model folder %s: %s@%s is a built-in tool's name", folder, *key)
                continue
            if key in found:
                log.warning(
                    "skipping model folder %s: %s@%s is already served from %s", folder, *key, found[key].folder
                )
                continue
            if (folder.parent.name, folder.name) != key:
                log.info("model folder %s holds %s@%s (served under the card's name)", folder, *key)
            digest = tool.info.attributes.get("weights_sha256", "")
            found[key] = _Entry(recording_compute(tool, device=self.device), digest, folder=folder)
        return found

    def infos(self) -> list[ModelInfo]:
        """What is served, each with its ``model_hash`` (resumed batches compare it with the
        ``modelHash`` of outputs already on disk; farm jobs pin it). The hash also goes under
        ``MODEL_HASH_ATTRIBUTE``, where hosts older than the typed field read it."""
        with self._lock:
            return [
                dataclasses.replace(
                    m.info,
                    model_hash=m.model_hash,
                    attributes={**m.info.attributes, MODEL_HASH_ATTRIBUTE: m.model_hash},
                )
                for m in self._models.values()
            ]

    def _find(self, name: str, version: str) -> _Entry:
        """The entry for ``name`` (at ``version``, or the highest version); the caller holds the lock."""
        matches = [m for (n, v), m in self._models.items() if n == name and (not version or v == version)]
        if not matches:
            served = sorted(f"{n}@{v}" for n, v in self._models)
            wanted = f"{name}@{version}" if version else name
            raise UnknownModelError(f"no model {wanted!r} on this server; it serves {served}")
        return max(matches, key=lambda m: version_key(m.info.version))

    # -- using models --------------------------------------------------------------------------

    def get(self, name: str, version: str = "") -> LoadedModel:
        """The model ``name`` (``version``, or its highest), loaded, as a use of it.

        The use pins the model (it is not unloaded) until :meth:`LoadedModel.release` or until
        the handle is dropped; prefer :meth:`use`, which releases at the end of its block.
        """
        with self._lock:
            entry = self._find(name, version)
            entry.users += 1
        try:
            state = self._load(entry)
        except BaseException:
            self._release(entry)
            raise
        with self._lock:
            entry.last_used = next(self._clock)
        handle = LoadedModel(entry.tool, entry.model_hash, state, loaded=True, folder=entry.folder)
        handle._finalizer = weakref.finalize(handle, self._release, entry)
        return handle

    @contextmanager
    def use(self, name: str, version: str = "") -> Iterator[LoadedModel]:
        """``with registry.use(name) as model:`` the loaded model, pinned for the block."""
        model = self.get(name, version)
        try:
            yield model
        finally:
            model.release()

    def _release(self, entry: _Entry) -> None:
        """End one use of ``entry``; if a model in use had pushed past the budget, trim now."""
        with self._lock:
            entry.users -= 1
            if entry.users == 0:
                self._trim(0, keep=None)

    def _load(self, entry: _Entry) -> Any:
        """``entry``'s state, loading it first (under its own lock) if needed. The caller pins it."""
        with entry.lock:
            with self._lock:
                if entry.loaded:
                    return entry.state
            state = entry.tool.load(device=self.device)
            size = _state_bytes(state) if entry.folder is not None else 0
            with self._lock:
                used = self._trim(size, keep=entry)
                entry.state, entry.size, entry.loaded = state, size, True
            if self.memory_budget_bytes is not None and used + size > self.memory_budget_bytes:
                log.warning(
                    "%s@%s (%d bytes) loaded past the memory budget of %d bytes: models in use hold %d bytes",
                    *entry.key,
                    size,
                    self.memory_budget_bytes,
                    used,
                )
            log.info("loaded %s@%s (%d bytes)", *entry.key, size)
            return state

    def _trim(self, extra: int, *, keep: _Entry | None) -> int:
        """Unload learned models, least recently used first, until ``extra`` more bytes fit the
        budget; never ``keep`` nor a model in use. Return the bytes still loaded. The caller
        holds the lock."""
        used = sum(e.size for e in self._models.values() if e.loaded)
        budget = self.memory_budget_bytes
        if budget is None or used + extra <= budget:
            return used
        candidates = sorted(
            (e for e in self._models.values() if e.loaded and e.folder is not None and e is not keep),
            key=lambda e: e.last_used,
        )
        for victim in candidates:
            if used + extra <= budget:
                break
            if victim.users > 0 or not victim.loaded:
                continue
            used -= victim.size
            log.info("unloading %s@%s (%d bytes) to stay within the memory budget", *victim.key, victim.size)
            victim.state, victim.size, victim.loaded = None, 0, False
        return used

    # -- what is loaded ------------------------------------------------------------------------

    def loaded(self) -> list[tuple[str, str]]:
        """(name, version) of every loaded model, least recently used first."""
        with self._lock:
            entries = sorted((e for e in self._models.values() if e.loaded), key=lambda e: e.last_used)
            return [e.key for e in entries]

    def loaded_bytes(self) -> int:
        """Bytes of loaded models counted against the budget."""
        with self._lock:
            return sum(e.size for e in self._models.values() if e.loaded)

    def in_use(self, name: str, version: str = "") -> int:
        """How many uses of the model are not yet released."""
        with self._lock:
            return self._find(name, version).users


def _model_folders(root: Path) -> list[Path]:
    """``root/<name>/<version>`` folders holding a card, in name and version order."""
    folders = []
    for name in sorted(p for p in root.iterdir() if p.is_dir()):
        for version in sorted((p for p in name.iterdir() if p.is_dir()), key=lambda p: version_key(p.name)):
            if (version / CARD_FILE).exists():
                folders.append(version)
            else:
                log.warning("skipping model folder %s: it holds no %s", version, CARD_FILE)
    return folders


def _state_bytes(state: object) -> int:
    """A loaded model's size: its ``parameter_bytes`` where it says, else 0."""
    size = getattr(state, "parameter_bytes", 0)
    return size if isinstance(size, int) and size > 0 else 0
