"""The processing gizmos (PF_Cleanup, PF_Matte, PF_Relight, PF_Model): Nuke calls only.

Each node renders its inputs into its cache through internal Writes (``pfw_<input>``), sends the
frames whose results are out of date to the server on a worker thread under a
``nuke.ProgressTask`` (its cancel button stops after the frame in hand), and shows the results
through an internal Read (``pfr_output``) whose file is an expression of the node's ``pfn_cache``
knob: the viewer, ``nuke -x`` and the farm read the same files. Everything else is
:mod:`plateforge.hosts`.

Knob names: the node's own knobs start ``pfn_``; knobs made from a model's parameters start
``pf_`` (:data:`plateforge.hosts.knobs.KNOB_PREFIX`), so a parameter cannot shadow a node knob.
"""

from __future__ import annotations

import time

import nuke

from plateforge.errors import PlateforgeError
from plateforge.hosts.cache import CacheLayout
from plateforge.hosts.connection import ServerStatus, check_server, connect, model_choices, models_for
from plateforge.hosts.knobs import KNOB_PREFIX, KnobSpec, input_slots, knob_specs, params_from_knobs
from plateforge.hosts.process import ProcessReport, process_cached
from plateforge.hosts.worker import BackgroundTask, ProgressUpdate, TaskContext
from plateforge.messages import user_message
from plateforge.models import ModelInfo
from plateforge_nuke import render_write
from plateforge_nuke.settings import cache_root, server_settings

__all__ = [
    "knob_changed",
    "on_create",
    "process",
    "refresh",
    "refresh_selected",
    "show_server_status",
]

_NO_MODEL = "(no model)"
#: Models last listed by the server, by name: knob_changed rebuilds knobs without a round trip.
_MODELS: dict[str, ModelInfo] = {}
#: Running work by node full name: one processing run per node at a time.
_RUNNING: dict[str, BackgroundTask[ProcessReport]] = {}
#: The last server status and when it was asked for (see _server_status).
_LAST_STATUS: tuple[float, ServerStatus] | None = None
_STATUS_TTL = 10.0


def _this() -> nuke.Group:
    node = nuke.thisNode()
    if not isinstance(node, nuke.Group):
        raise PlateforgeError(f"{node.name()} is not a plateforge node")
    return node


def _family(node: nuke.Node) -> str:
    knob = node.knob("pfn_family")
    return str(knob.value()) if knob is not None else "model"


def _status(node: nuke.Node, text: str) -> None:
    knob = node.knob("pfn_status")
    if knob is not None:
        knob.setValue(text)


# -- knobs from the model ---------------------------------------------------------------------


def _make_knob(spec: KnobSpec) -> nuke.Knob:
    knob: nuke.Knob
    if spec.kind == "float":
        knob = nuke.Double_Knob(spec.name, spec.label)
    elif spec.kind == "int":
        knob = nuke.Int_Knob(spec.name, spec.label)
    elif spec.kind == "bool":
        knob = nuke.Boolean_Knob(spec.name, spec.label)
        knob.setFlag(nuke.STARTLINE)
    elif spec.kind == "choice":
        knob = nuke.Enumeration_Knob(spec.name, spec.label, list(spec.choices))
    else:
        knob = nuke.String_Knob(spec.name, spec.label)
    if spec.slider is not None and isinstance(knob, nuke.Array_Knob):
        knob.setRange(*spec.slider)
    knob.setValue(spec.default)
    knob.setTooltip(spec.tooltip)
    return knob


def _build_knobs(node: nuke.Group, info: ModelInfo | None) -> None:
    """Replace the parameter knobs with ``info``'s, keeping the values of knobs that stay."""
    if info is None:
        return  # a model this server does not serve: its knobs and values stay as saved
    kept: dict[str, object] = {}
    for name, knob in list(node.knobs().items()):
        if name.startswith(KNOB_PREFIX):
            kept[name] = knob.value()
            node.removeKnob(knob)
    for spec in knob_specs(info):
        knob = _make_knob(spec)
        node.addKnob(knob)
        if spec.name in kept:
            try:
                params_from_knobs(info, {spec.name: kept[spec.name]})
            except PlateforgeError:
                continue  # the old value does not fit the new declaration: the default stands
            knob.setValue(kept[spec.name])


def _build_inputs(node: nuke.Group, info: ModelInfo) -> None:
    """PF_Model only (a Group, so its insides are saved with the script): one Input and one
    cache Write per declared input, named as the model declares them and in its order. Nuke
    numbers Input nodes in the order they are made, so a different set is rebuilt in order; the
    upstream nodes stay connected to the inputs whose names remain."""
    wanted = [(slot.index, slot.name) for slot in input_slots(info)]
    sources = [n for n in node.nodes() if n.Class() == "Input"]
    current = sorted((int(n["number"].value()), n.name()) for n in sources)
    if current == wanted and all(node.node("pfw_" + name) is not None for _, name in wanted):
        return
    upstream = {name: node.input(number) for number, name in current}
    with node:
        for source in sources:
            nuke.delete(node.node("pfw_" + source.name()))
            nuke.delete(source)
        for number, name in wanted:
            source = nuke.createNode("Input", f"name {name}", False)
            source.setXYpos(number * 120, -300)
            write = nuke.createNode("Write", _write_knobs(name), False)
            write.setName("pfw_" + name)
            write.setInput(0, source)
            write.setXYpos(number * 120, -200)
    for number, name in wanted:
        node.setInput(number, upstream.get(name))


def _write_knobs(name: str) -> str:
    # Float, every channel, no metadata: the file's bytes depend on the pixels only, so an
    # unchanged input re-rendered hashes the same and its frames are not sent again. Disabled
    # until render_write runs it, so nuke -x never renders it.
    return (
        f"file {{[value parent.pfn_cache]/inputs/{name}.####.exr}} file_type exr datatype {{32 bit float}} "
        "channels all metadata {no metadata} create_directories true disable true"
    )


def _model_menu(node: nuke.Node) -> str:
    knob = node.knob("pfn_model")
    return str(knob.value()) if knob is not None else ""


def _apply_model(node: nuke.Group, info: ModelInfo | None) -> None:
    _build_knobs(node, info)
    if info is None:
        return
    output = node.knob("pfn_output")
    if output is not None and info.outputs:
        output.setValue(info.outputs[0].name)
    if _family(node) == "model":
        _build_inputs(node, info)


# -- callbacks from the gizmo files -------------------------------------------------------------


def _server_status(*, fresh: bool) -> ServerStatus:
    """The server's status; without ``fresh``, one asked for in the last few seconds will do, so
    a script with many plateforge nodes asks once while it loads, not once per node."""
    global _LAST_STATUS
    now = time.monotonic()
    if fresh or _LAST_STATUS is None or now - _LAST_STATUS[0] > _STATUS_TTL:
        _LAST_STATUS = (now, check_server(server_settings()))
    return _LAST_STATUS[1]


def on_create() -> None:
    """onCreate (new nodes and nodes loaded with a script): the cache folder, the script's frame
    range, and, in the GUI only, the server's models (a render never waits on a server check)."""
    node = _this()
    layout = CacheLayout.for_node(cache_root(), node.fullName())
    cache = node.knob("pfn_cache")
    if cache is not None and not str(cache.value()):
        cache.setValue(str(layout.folder))
    first, last = node.knob("pfn_first"), node.knob("pfn_last")
    if first is not None and last is not None and int(first.value()) == 0 and int(last.value()) == 0:
        first.setValue(nuke.root().firstFrame())
        last.setValue(nuke.root().lastFrame())
    if nuke.env["gui"]:
        _refresh(node, _server_status(fresh=False))


def knob_changed() -> None:
    """knobChanged: a new model choice rebuilds the parameter knobs (and PF_Model's inputs)."""
    knob = nuke.thisKnob()
    if knob.name() != "pfn_model":
        return
    node = _this()
    _apply_model(node, _MODELS.get(_model_menu(node)))


def refresh(node: nuke.Node | None = None) -> None:
    """The refresh button: ask the server for its status and models; update the menu and knobs."""
    group = node if isinstance(node, nuke.Group) else _this()
    _refresh(group, _server_status(fresh=True))


def _refresh(group: nuke.Group, status: ServerStatus) -> None:
    _status(group, status.message)
    if not status.connected:
        return
    offered = models_for(status.models, _family(group))
    # The menu offers NAME@VERSION, what `plateforge models` prints and every command takes; a
    # saved bare NAME (older scripts) stays and keeps meaning its newest version.
    _MODELS.update(model_choices(status.models))
    menu = group.knob("pfn_model")
    if not isinstance(menu, nuke.Enumeration_Knob):
        return
    current = _model_menu(group)
    names = [f"{m.name}@{m.version}" for m in offered]
    if current and current != _NO_MODEL and current not in names and current in _MODELS:
        names.append(current)
    elif current and current != _NO_MODEL and current not in names:
        # Keep a saved choice the server does not offer (another server, a model not yet
        # published) rather than silently switching the node to another model.
        names.append(current)
        _status(group, f"{status.message}; {current!r} is not served there")
    elif not offered:
        _status(group, f"{status.message}; none is a {_family(group)} model (train one with PF_Train)")
    names = names or [_NO_MODEL]
    menu.setValues(names)
    menu.setValue(current if current in names else names[0])
    _apply_model(group, _MODELS.get(_model_menu(group)))


def refresh_selected() -> None:
    for node in nuke.selectedNodes():
        if node.knob("pfn_family") is not None:
            refresh(node)


def show_server_status() -> None:
    nuke.message(_server_status(fresh=True).message)


# -- processing ------------------------------------------------------------------------------------


def _input_numbers(node: nuke.Group) -> dict[str, int]:
    return {n.name(): int(n["number"].value()) for n in node.nodes() if n.Class() == "Input"}


def _render_inputs(node: nuke.Group, info: ModelInfo, first: int, last: int) -> list[str]:
    """Render every connected input the model declares into the cache; the names rendered."""
    numbers = _input_numbers(node)
    rendered: list[str] = []
    for slot in input_slots(info):
        if slot.name not in numbers:
            takes = ", ".join(sorted(numbers))
            raise PlateforgeError(
                f"{node.name()} has inputs {takes}; model {info.name!r} needs {slot.name!r}: use PF_Model for it"
            )
        if node.input(numbers[slot.name]) is None:
            if slot.required:
                raise PlateforgeError(f"connect the {slot.name!r} input of {node.name()}")
            continue
        write = node.node("pfw_" + slot.name)
        if write is None:
            raise PlateforgeError(f"{node.name()} lacks its internal Write pfw_{slot.name}")
        render_write(write, first, last)
        rendered.append(slot.name)
    return rendered


class _Dialog:
    """A nuke.ProgressTask made on the worker thread (where Nuke wants it) and read by the
    BackgroundTask's cancel poller."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.task: nuke.ProgressTask | None = None

    def open(self) -> None:
        self.task = nuke.ProgressTask(self.title)

    def update(self, update: ProgressUpdate) -> None:
        if self.task is not None:
            self.task.setProgress(update.percent)
            self.task.setMessage(update.message)

    def cancelled(self) -> bool:
        return self.task is not None and bool(self.task.isCancelled())

    def close(self) -> None:
        self.task = None  # dropping the last reference closes Nuke's dialog


def _finished(name: str, task: BackgroundTask[ProcessReport]) -> None:
    """On the main thread once the work ends: reload the Read, say what happened."""
    _RUNNING.pop(name, None)
    node = nuke.toNode(name)
    if not isinstance(node, nuke.Group):
        return
    read = node.node("pfr_output")
    reload = read.knob("reload") if read is not None else None
    if isinstance(reload, nuke.Script_Knob):
        reload.execute()
    if task.state == "succeeded":
        report = task.wait(0)
        _status(node, f"done: {len(report.sent)} frame(s) sent, {len(report.skipped)} unchanged")
    else:
        _status(node, task.describe())
        if task.state == "failed":
            nuke.message(f"plateforge {node.name()}: {user_message(task.error) if task.error else task.describe()}")


def process(node: nuke.Node | None = None) -> None:
    """The Process button: render the inputs, then send the out-of-date frames in the background."""
    group = node if isinstance(node, nuke.Group) else _this()
    name = group.fullName()
    if name in _RUNNING and not _RUNNING[name].done:
        nuke.message(f"{group.name()} is already processing; cancel it from its progress bar")
        return
    model = _model_menu(group)
    try:
        info = _MODELS.get(model)
        if info is None or model == _NO_MODEL:
            raise PlateforgeError(f"pick a model first ({_server_status(fresh=True).message})")
        values = {spec.name: group[spec.name].value() for spec in knob_specs(info) if group.knob(spec.name)}
        params = params_from_knobs(info, values)
        first, last = int(group["pfn_first"].value()), int(group["pfn_last"].value())
        if last < first:
            raise PlateforgeError(f"frame range {first}-{last} runs backwards")
        layout = CacheLayout.for_node(cache_root(), name)
        group["pfn_cache"].setValue(str(layout.folder))
        rendered = _render_inputs(group, info, first, last)
    except (PlateforgeError, RuntimeError) as error:  # RuntimeError: Nuke's own render errors
        nuke.message(f"plateforge {group.name()}: {user_message(error)}")
        return

    settings = server_settings()
    dialog = _Dialog(f"plateforge {group.name()}: {model}")

    def work(context: TaskContext) -> ProcessReport:
        dialog.open()
        try:
            with connect(settings) as client:
                return process_cached(
                    client,
                    layout=layout,
                    model=model,
                    frames=range(first, last + 1),
                    inputs=rendered,
                    params=params,
                    progress=lambda done, total, frame: context.report(done, total, f"frame {frame}"),
                    cancel=context.cancel,
                )
        finally:
            dialog.close()

    def on_finish(task: BackgroundTask[ProcessReport]) -> None:
        nuke.executeInMainThread(_finished, args=(name, task))

    _status(group, f"processing {first}-{last} with {model}…")
    _RUNNING[name] = BackgroundTask(
        work,
        name=f"plateforge-{group.name()}",
        on_progress=dialog.update,
        poll_cancelled=dialog.cancelled,
        on_finish=on_finish,
    ).start()
