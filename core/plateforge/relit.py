"""Moved to :mod:`plateforge.shots.relit`; this old path warns, and goes in the next release."""

import sys
import warnings

from plateforge.shots import relit as _moved
from plateforge.shots.relit import *  # noqa: F403  (for type checkers; the module itself is swapped in below)

warnings.warn(
    "plateforge.relit moved to plateforge.shots.relit (the old path goes in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
