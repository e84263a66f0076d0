"""The tools the server offers; each is one module with the contract in ``base``.

Built-in tool modules are listed in ``BUILTIN``; the registry imports them by name.
"""

BUILTIN = (
    "plateforge.server.tools.passthrough",
    "plateforge.server.tools.cleanup_classical",
    "plateforge.server.tools.relight_classical",
    "plateforge.server.tools.matte_classical",
)
