"""The Nuke plugin's gizmo files, parse-checked: balanced syntax, the knobs and inputs the Python
side expects, callbacks that name real functions, and cache paths that match plateforge.hosts."""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from plateforge.client import Client
from plateforge.hosts.cache import CacheLayout
from plateforge.hosts.knobs import KNOB_PREFIX, input_slots
from tests.conftest import REPO
from tests.plateforge.hosts.nuke_script import Node, ScriptError, parse, split_words
from tests.plateforge.hosts.nuke_standin import installed

PLUGIN = REPO / "plugins" / "nuke"
GIZMOS = PLUGIN / "gizmos"
PROCESSING = {"PF_Cleanup": "cleanup", "PF_Matte": "matte", "PF_Relight": "relight", "PF_Model": "model"}
#: Knobs the processing code reads or writes (plateforge_nuke.nodes), by addUserKnob type id.
PROCESSING_KNOBS = {
    "pfn_family": 1,
    "pfn_model": 4,
    "pfn_refresh": 22,
    "pfn_status": 26,
    "pfn_first": 3,
    "pfn_last": 3,
    "pfn_process": 22,
    "pfn_cache": 1,
    "pfn_output": 1,
}
TRAIN_KNOBS = {
    "pfn_keyframes": 1,
    "pfn_add_key": 22,
    "pfn_tool": 4,
    "pfn_steps": 3,
    "pfn_size": 4,
    "pfn_model_name": 1,
    "pfn_licence": 1,
    "pfn_rights_holder": 1,
    "pfn_artist": 1,
    "pfn_start": 22,
    "pfn_cancel": 22,
    "pfn_resume": 22,
    "pfn_status": 26,
    "pfn_loss": 26,
    "pfn_job": 1,
    "pfn_dataset": 1,
    "pfn_show_preview": 6,
    "pfn_show_loss": 6,
}


@pytest.fixture(scope="module")
def plugin_on_path() -> Iterator[None]:
    installed()
    sys.path.insert(0, str(PLUGIN))
    yield
    sys.path.remove(str(PLUGIN))


def load(name: str) -> tuple[Node, list[Node], list[str]]:
    nodes, others = parse((GIZMOS / f"{name}.gizmo").read_text(encoding="utf-8"))
    return nodes[0], nodes[1:], [" ".join(c.words) for c in others]


def inner(nodes: list[Node], cls: str) -> list[Node]:
    return [n for n in nodes if n.cls == cls]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("Write {\n file {a\n}\n", "unbalanced '{'", id="open-brace"),
        pytest.param('Read {\n file "a\n}\n', "unterminated quote", id="open-quote"),
        pytest.param("set N [stack 0\n", "unbalanced '\\['", id="open-bracket"),
        pytest.param("Gizmo {\n addUserKnob {x}\n}\n", "addUserKnob needs", id="bad-user-knob"),
    ],
)
def test_the_reader_refuses_broken_scripts(text: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        parse(text)


def test_the_reader_reads_words_as_nuke_does() -> None:
    (command,) = split_words('file {[value parent.x]/a.####.exr} "b \\"c\\"\\n"')
    assert command.words == ["file", "[value parent.x]/a.####.exr", 'b "c"\n']


def test_every_gizmo_is_offered_by_the_menu_and_parses() -> None:
    tree = ast.parse((PLUGIN / "plateforge_nuke" / "__init__.py").read_text())
    offered = next(
        ast.literal_eval(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "GIZMOS"
    )
    files = sorted(p.stem for p in GIZMOS.glob("*.gizmo"))
    assert sorted(name for name, _ in offered) == files == sorted([*PROCESSING, "PF_Train"])
    for name in files:
        top, nodes, others = load(name)
        assert top.cls == ("Group" if name == "PF_Model" else "Gizmo"), name
        assert others[0].startswith("version ") and others[-1] == "end_group", name
        inputs = inner(nodes, "Input")
        assert int(top.knob("inputs") or -1) == len(inputs), name
        assert sorted(int(n.knob("number") or -1) for n in inputs) == list(range(len(inputs))), name
        assert len(inner(nodes, "Output")) == 1, name
        assert not any(k.startswith(KNOB_PREFIX) for k in top.user_knobs), "pf_ knobs are made from models"


@pytest.mark.parametrize("name", list(PROCESSING))
def test_processing_gizmos_have_the_knobs_and_cache_paths_the_code_uses(name: str, tmp_path: Path) -> None:
    top, nodes, _ = load(name)
    assert {k: top.user_knobs[k][0] for k in PROCESSING_KNOBS if k in top.user_knobs} == PROCESSING_KNOBS
    assert top.knob("pfn_family") == PROCESSING[name]
    layout = CacheLayout.for_node(tmp_path, name + "1")
    expand = {"[value parent.pfn_cache]": str(layout.folder), "[value parent.pfn_output]": "image"}

    def resolved(node: Node) -> str:
        text = node.knob("file") or ""
        for expression, value in expand.items():
            text = text.replace(expression, value)
        return text

    writes = {n.name: n for n in inner(nodes, "Write")}
    for source in inner(nodes, "Input"):
        write = writes[f"pfw_{source.name}"]
        assert resolved(write) == layout.input_pattern(str(source.name))
        # Saved disabled, so nuke -x and Render All never run the cache Writes.
        assert write.knob("disable") == "true" and write.knob("channels") == "all"
        assert write.knob("metadata") == "no metadata"
    (read,) = inner(nodes, "Read")
    assert read.name == "pfr_output" and resolved(read) == layout.output_pattern("image")


def test_fixed_gizmo_inputs_are_named_as_the_models_declare(client: object) -> None:
    assert isinstance(client, Client)
    _, nodes, _ = load("PF_Cleanup")
    by_number = sorted((int(n.knob("number") or 0), n.name) for n in inner(nodes, "Input"))
    declared = [(s.index, s.name) for s in input_slots(client.model_info("cleanup-classical"))]
    assert by_number == declared


def test_train_gizmo(tmp_path: Path) -> None:
    from plateforge.hosts.training import SIZES, TRAINABLE_TOOLS, KeyframeDataset, TrainingMonitor

    top, nodes, _ = load("PF_Train")
    assert {k: top.user_knobs[k][0] for k in TRAIN_KNOBS if k in top.user_knobs} == TRAIN_KNOBS
    menus = {k: split_words(top.user_knobs[k][1][-1])[0].words for k in ("pfn_tool", "pfn_size")}
    assert tuple(menus["pfn_tool"]) == TRAINABLE_TOOLS and tuple(menus["pfn_size"]) == SIZES
    assert sorted((int(n.knob("number") or 0), n.name) for n in inner(nodes, "Input")) == [
        (0, "input"),
        (1, "ground_truth"),
    ]
    dataset = KeyframeDataset(tmp_path)
    writes = {n.name: (n.knob("file") or "").replace("[value parent.pfn_dataset]", str(tmp_path)) for n in nodes}
    assert writes["pfw_input"] == dataset.input_pattern and writes["pfw_target"] == dataset.target_pattern
    assert writes["pfr_preview"] == str(dataset.preview_path)
    # The loss chart the monitor writes is what the node's viewer switch can show.
    monitor = TrainingMonitor(preview_path=dataset.preview_path)
    assert writes["pfr_loss"] == str(dataset.loss_path) == str(monitor.loss_path)
    (switch,) = inner(nodes, "Switch")
    assert switch.knob("inputs") == "3"
    assert "pfn_show_loss ? 2 : parent.pfn_show_preview" in (switch.knob("which") or "")


def _callbacks() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in sorted(GIZMOS.glob("*.gizmo")):
        top, _, _ = load(path.stem)
        scripts = [top.knob("onCreate"), top.knob("knobChanged")]
        # A PyScript knob (type 22) holds its Python after the T flag.
        scripts += [spec[spec.index("T") + 1] for kind, spec in top.user_knobs.values() if kind == 22]
        found += [(path.stem, s) for s in scripts if s]
    return found


@pytest.mark.parametrize(("gizmo", "script"), _callbacks())
def test_callbacks_name_functions_that_exist(plugin_on_path: None, gizmo: str, script: str) -> None:
    tree = ast.parse(script)
    (imported, call) = tree.body
    assert isinstance(imported, ast.Import) and isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    module = importlib.import_module(imported.names[0].name)
    assert isinstance(call.value.func, ast.Attribute)
    function = getattr(module, call.value.func.attr, None)
    assert callable(function) and call.value.func.attr in module.__all__, (gizmo, script)


@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(PLUGIN))) for p in sorted(PLUGIN.rglob("*.py"))])
def test_plugin_parses_as_python_310(path: Path) -> None:
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 10))


def test_only_the_plugin_imports_nuke() -> None:
    offenders = []
    for path in sorted([*(REPO / "core").rglob("*.py"), *(REPO / "server").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "nuke" or n.startswith("nuke.") for n in names):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
