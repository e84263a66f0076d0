"""plateforge.atomic, the one way the shipped packages write a file or folder in place, and the
check that no module renames files anywhere else."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from plateforge import atomic
from tests.conftest import REPO

#: The shipped code: the host package, the server, the plugins.
SHIPPED = ("core", "server", "plugins")


def _renames(path: Path, shown: str = "") -> list[str]:
    """Calls in ``path`` that move a file over another: ``os.replace``/``os.rename``, and a
    ``.rename(x)``/``.replace(x)`` method call with exactly one argument (``Path``'s; ``str.replace``
    takes two and ``dataclasses.replace`` keywords)."""
    shown = shown or str(path.relative_to(REPO))
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name, owner = node.func.attr, node.func.value
        if name in ("replace", "rename") and isinstance(owner, ast.Name) and owner.id == "os":
            found.append(f"{shown}:{node.lineno} os.{name}")
        elif name in ("replace", "rename") and len(node.args) == 1 and not node.keywords:
            found.append(f"{shown}:{node.lineno} .{name}(...)")
    return found


def test_no_module_renames_files_outside_the_atomic_helper() -> None:
    helper = REPO / "core" / "plateforge" / "atomic.py"
    found = [
        hit
        for top in SHIPPED
        for path in sorted((REPO / top).rglob("*.py"))
        if path != helper and "/v1/" not in path.as_posix()
        for hit in _renames(path)
    ]
    assert not found, "write through plateforge.atomic instead of renaming by hand:\n" + "\n".join(found)


def test_the_check_finds_a_hand_written_rename(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os, dataclasses\nfrom pathlib import Path\nos.replace('a', 'b')\nPath('a').rename('b')\n"
        "'ab'.replace('a', 'b')\ndataclasses.replace(x, y=1)\n"
    )
    assert [hit.split(" ")[1] for hit in _renames(sample, "sample.py")] == ["os.replace", ".rename(...)"]


def test_write_text_replaces_whole_and_leaves_nothing_beside(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_text("old")
    atomic.write_text(target, "new", durable=True)
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["record.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "frame.exr"
    target.write_bytes(b"old frame")
    with pytest.raises(RuntimeError, match="writer died"), atomic.atomic_path(target) as temp:
        temp.write_bytes(b"half a fr")
        raise RuntimeError("writer died")
    assert target.read_bytes() == b"old frame"
    assert os.listdir(tmp_path) == ["frame.exr"]


def test_keep_mode_keeps_the_replaced_files_permissions(tmp_path: Path) -> None:
    target = tmp_path / "dataset.toml"
    target.write_text("old")
    target.chmod(0o640)
    atomic.write_text(target, "new", keep_mode=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_long_name_still_gets_a_temporary_name(tmp_path: Path) -> None:
    target = tmp_path / ("x" * 250)
    atomic.write_bytes(target, b"ok")
    assert target.read_bytes() == b"ok"


def test_replace_folder_swaps_whole_or_keeps_the_old(tmp_path: Path) -> None:
    final = tmp_path / "plugin"
    final.mkdir()
    (final / "old.py").write_text("old")
    with atomic.replace_folder(final) as staging:
        (staging / "new.py").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.py"]
    with pytest.raises(RuntimeError), atomic.replace_folder(final) as staging:
        (staging / "half.py").write_text("half")
        raise RuntimeError
    assert sorted(p.name for p in final.iterdir()) == ["new.py"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugin"]


def test_publish_folder_never_lands_on_an_existing_folder(tmp_path: Path) -> None:
    staging, final = tmp_path / ".staging", tmp_path / "model"
    staging.mkdir()
    (staging / "card.json").write_text("{}")
    atomic.publish_folder(staging, final)
    assert (final / "card.json").read_text() == "{}"
    again = tmp_path / ".again"
    again.mkdir()
    with pytest.raises(FileExistsError):
        atomic.publish_folder(again, final)
    assert again.is_dir() and (final / "card.json").exists()
