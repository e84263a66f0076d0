"""``python -m bench.cycles tune|report [--shot NAME]``: render a Cycles set into the cache."""

import sys

from .render import main

sys.exit(main())
