"""``python -m plateforge.server`` is ``plateforge serve``."""

import sys

from plateforge.cli.serve import main

sys.exit(main(sys.argv[1:]))
