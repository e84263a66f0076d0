"""Moved to :mod:`plateforge.shots.dailies`; this old path warns, and goes in the next release."""

import sys
import warnings

from plateforge.shots import dailies as _moved
from plateforge.shots.dailies import *  # noqa: F403  (for type checkers; the module itself is swapped in below)

warnings.warn(
    "plateforge.dailies moved to plateforge.shots.dailies (the old path goes in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
