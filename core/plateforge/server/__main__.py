"""Deprecated: ``python -m plateforge.server`` is ``python -m plateforge_server``."""

import runpy

runpy.run_module("plateforge_server", run_name="__main__", alter_sys=True)
