"""Install the extension zip through Blender's extensions API: bl_install.py ZIP."""

import sys

import bpy

result = bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
print("install:", result)
import addon_utils  # noqa: E402

addon_utils.enable("bl_ext.user_default.plateforge", default_set=True)
assert bpy.types.Node.bl_rna_get_subclass_py("PlateforgeCompositorNode") is not None, "node type not registered"
import plateforge  # noqa: E402  (from the bundled wheel, not from any virtualenv)

print("plateforge from", plateforge.__file__)
addon_utils.disable("bl_ext.user_default.plateforge")
assert bpy.types.Node.bl_rna_get_subclass_py("PlateforgeCompositorNode") is None, "unregister left the node type"
print("installed ok")
