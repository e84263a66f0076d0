"""Auto-start: with no server address, the add-on starts one and stops it when disabled.

bl_autostart.py "SERVER COMMAND"
"""

import sys

import bpy
from bl_common import ADDON, disable, enable

prefs = enable("", "")
prefs.auto_start = True
prefs.server_command = sys.argv[1]
assert bpy.ops.plateforge.refresh_models() == {"FINISHED"}
preferences = sys.modules[ADDON + ".preferences"]
process, address, _token = preferences._local["server"]
assert process.poll() is None, "the local server is not running"
print("local server on", address)
disable()
assert process.poll() is not None, "disabling the add-on left the local server running"
print("autostart ok")
