"""A STAND-IN for Nuke's ``nuke`` module, for tests only: Nuke cannot be installed here.

It holds nothing: the plateforge_nuke modules touch ``nuke`` only inside functions, so importing
them (to check that the gizmos' callbacks name functions that exist) needs just the module name.
Nothing here pretends to render, and no test calls a plateforge_nuke function through it.
"""

from __future__ import annotations

import sys
import types

__all__ = ["installed"]


def installed() -> types.ModuleType:
    """Put the stand-in in ``sys.modules['nuke']`` (unless a real one is there) and return it."""
    module = sys.modules.get("nuke")
    if module is None:
        module = types.ModuleType("nuke", __doc__)
        module.__dict__["IS_STANDIN"] = True
        sys.modules["nuke"] = module
    return module
