"""``python -m plateforge.server`` is ``plateforge serve``."""

import sys

from plateforge.cli.main import main

sys.exit(main(["serve", *sys.argv[1:]]))
