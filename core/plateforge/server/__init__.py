"""Deprecated: the server moved to the top-level package ``plateforge_server`` (server/plateforge_server/).

``import plateforge.server.X`` still works for one release, with a DeprecationWarning: each
``plateforge.server.X`` is the very module ``plateforge_server.X`` (same object, so its state is
shared), imported only when asked for. Nothing here imports the server until then, so the host
package stays importable without torch.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

OLD = __name__  # plateforge.server
NEW = "plateforge_server"

warnings.warn(
    f"{OLD} is deprecated: import {NEW} instead (the folder tree is now the import tree); "
    f"this alias goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``plateforge.server.X`` as ``plateforge_server.X``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not fullname.startswith(OLD + "."):
            return None
        if importlib.util.find_spec(NEW + fullname[len(OLD) :]) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: ModuleSpec) -> None:
        return None  # a placeholder, replaced below by the real module

    def exec_module(self, module: ModuleType) -> None:
        # The import system hands back whatever sys.modules holds under the name once this returns,
        # so the real module (with its own __spec__ untouched) is what the caller gets.
        sys.modules[module.__name__] = importlib.import_module(NEW + module.__name__[len(OLD) :])


if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
    sys.meta_path.insert(0, _Alias())


def __getattr__(name: str) -> object:
    return getattr(importlib.import_module(NEW), name)
