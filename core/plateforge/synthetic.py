"""Moved to :mod:`plateforge.shots.synthetic`; this old path warns, and goes in the next release."""

import sys
import warnings

from plateforge.shots import synthetic as _moved
from plateforge.shots.synthetic import *  # noqa: F403  (for type checkers; the module itself is swapped in below)

warnings.warn(
    "plateforge.synthetic moved to plateforge.shots.synthetic (the old path goes in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
