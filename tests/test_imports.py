"""The import walls, checked in CI: import-linter's contracts (pyproject.toml), the plugins' imports,
and no hand-written RPC method table.

* The host package never imports the server, torch, diffusers, bpy or nuke; the server never
  imports the host CLI (``lint-imports``, contracts in pyproject.toml's ``[tool.importlinter]``).
* Plugins import the standard library, their host application (bpy only under plugins/blender,
  nuke only under plugins/nuke), their own modules and the host package, never the server.
* Services register through the generated ``add_*Servicer_to_server``: a dict of
  ``grpc.*_rpc_method_handler`` entries, or a generic handler built from a dict literal, repeats the
  .proto by hand. Clients call through the generated ``*Stub``: a channel's ``unary_unary`` (and the
  like) given a method name, or an RPC path (``/package.Service/Method``) written out, repeats it too.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from tests.conftest import REPO

HOST = REPO / "core" / "plateforge"
SERVER = REPO / "server" / "plateforge_server"
HANDLER_FACTORIES = {
    "unary_unary_rpc_method_handler",
    "unary_stream_rpc_method_handler",
    "stream_unary_rpc_method_handler",
    "stream_stream_rpc_method_handler",
}

RPC_CALLABLES = {"unary_unary", "unary_stream", "stream_unary", "stream_stream"}
RPC_PATH = re.compile(r"/[A-Za-z_]\w*(\.\w+)+/\w+")


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _lint_imports(config: Path, *, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """lint-imports with ``config``; ``path`` (a folder of extra modules) goes first on the path."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), str(REPO / "core"), str(REPO / "server")])
    lint = Path(sys.executable).parent / "lint-imports"
    return subprocess.run(
        [str(lint), "--no-cache", "--config", str(config)], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def test_import_contracts_hold() -> None:
    result = _lint_imports(REPO / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout, result.stdout


def test_the_contracts_catch_a_host_module_importing_the_server(tmp_path: Path) -> None:
    # A copy of the host package, first on the path, with two offenders planted in it.
    tree = tmp_path / "plateforge"
    shutil.copytree(HOST, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (tree / "cli" / "sneaky.py").write_text("from plateforge_server import registry\n")
    (tree / "frames_torch.py").write_text("import torch\n")
    result = _lint_imports(REPO / "pyproject.toml", path=tmp_path)
    assert result.returncode != 0
    assert "plateforge.cli.sneaky -> plateforge_server.registry" in result.stdout, result.stdout
    assert "plateforge.frames_torch -> torch" in result.stdout, result.stdout


def test_the_host_contract_covers_the_whole_host_package() -> None:
    """Now that the server is its own top-level package, the contract names ``plateforge`` itself,
    so a new host module cannot escape it by not being listed."""
    (host,) = [c for c in _contracts() if c["id"] == "host-not-server"]
    assert host["source_modules"] == ["plateforge"]
    assert "plateforge_server" in host["forbidden_modules"]  # type: ignore[operator]


# -- plugins ---------------------------------------------------------------------------------------


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, top-level module)`` of every absolute import in ``path`` (relative ones are the plugin's own)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _plugin_violations(plugin: Path, host_app: str) -> list[str]:
    own = {p.stem for p in plugin.rglob("*.py")} | {p.name for p in plugin.rglob("*") if p.is_dir()}
    bad = []
    for path in sorted(plugin.rglob("*.py")):
        for line, name in _imports(path):
            top = name.split(".")[0]
            if name == "plateforge_server" or name.startswith("plateforge_server."):
                bad.append(f"{path.relative_to(plugin.parent)}:{line} imports the server ({name})")
            elif top in sys.stdlib_module_names or top in ("plateforge", host_app) or top in own:
                continue
            else:
                bad.append(f"{path.relative_to(plugin.parent)}:{line} imports {name}: not the host package")
    return bad


@pytest.mark.parametrize(("plugin", "host_app"), [("blender", "bpy"), ("nuke", "nuke")], ids=["blender", "nuke"])
def test_plugins_import_only_the_host_package(plugin: str, host_app: str) -> None:
    bad = _plugin_violations(REPO / "plugins" / plugin, host_app)
    assert not bad, "\n".join(bad)


def test_the_plugin_check_finds_a_server_import(tmp_path: Path) -> None:
    plugin = tmp_path / "blender"
    plugin.mkdir()
    (plugin / "node.py").write_text("import bpy\nfrom . import ops\nimport nuke\nfrom plateforge_server import app\n")
    assert [line.split(" ", 1)[1] for line in _plugin_violations(plugin, "bpy")] == [
        "imports nuke: not the host package",
        "imports the server (plateforge_server)",
    ]


# -- RPC method tables -----------------------------------------------------------------------------


def _hand_tables(path: Path, shown: str) -> list[str]:
    """Method tables written out in ``path``: a dict literal whose values call a
    ``grpc.*_rpc_method_handler``, or ``method_handlers_generic_handler`` given a dict literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Dict) and any(
            isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr in HANDLER_FACTORIES
            for v in node.values
        ):
            found.append(f"{shown}:{node.lineno} a dict of rpc method handlers")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "method_handlers_generic_handler"
            and any(isinstance(arg, ast.Dict) for arg in node.args)
        ):
            found.append(f"{shown}:{node.lineno} a generic handler over a dict literal")
    return found


def test_no_module_writes_an_rpc_method_table_by_hand() -> None:
    found = [
        hit
        for top in ("core", "server", "plugins")
        for path in sorted((REPO / top).rglob("*.py"))
        if not path.name.endswith("_pb2_grpc.py")
        for hit in _hand_tables(path, str(path.relative_to(REPO)))
    ]
    assert not found, "register through the generated add_*Servicer_to_server instead:\n" + "\n".join(found)


def test_the_table_check_finds_a_hand_written_table(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import grpc\n"
        "handlers = {'A': grpc.unary_unary_rpc_method_handler(f)}\n"
        "grpc.method_handlers_generic_handler('s', {})\n"
        "wrapped = grpc.unary_unary_rpc_method_handler(g, None, None)\n"
    )
    assert _hand_tables(sample, "sample.py") == [
        "sample.py:2 a dict of rpc method handlers",
        "sample.py:3 a generic handler over a dict literal",
    ]


def _hand_callables(path: Path, shown: str) -> list[str]:
    """RPCs named by hand in ``path``: a channel's ``unary_unary`` (or another kind) called with a
    string method name, or a string that is an RPC path (``/plateforge.v1.Inference/Process``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in RPC_CALLABLES
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(f"{shown}:{node.lineno} a {node.func.attr} callable named by hand")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and RPC_PATH.fullmatch(node.value):
            found.append(f"{shown}:{node.lineno} the RPC path {node.value!r} written out")
    return found


def test_no_module_names_an_rpc_by_hand() -> None:
    found = [
        hit
        for top in ("core", "server", "plugins")
        for path in sorted((REPO / top).rglob("*.py"))
        if not path.name.endswith("_pb2_grpc.py")
        for hit in _hand_callables(path, str(path.relative_to(REPO)))
    ]
    assert not found, "call through the generated *_pb2_grpc stubs instead:\n" + "\n".join(found)


def test_the_rpc_name_check_finds_a_hand_built_callable(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "_PROCESS_STREAM = '/plateforge.v1.Inference/ProcessStream'\n"
        "call = channel.stream_stream(_PROCESS_STREAM, None, None)\n"
        "other = channel.unary_unary('Check')\n"
        "fine = channel.unary_unary(method, **kwargs)\n"
        "text = 'see /plateforge.v1.Inference/Process in the docs'\n"
    )
    assert _hand_callables(sample, "sample.py") == [
        "sample.py:1 the RPC path '/plateforge.v1.Inference/ProcessStream' written out",
        "sample.py:3 a unary_unary callable named by hand",
    ]
