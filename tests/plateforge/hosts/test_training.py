"""The train panel's logic against a real server process: keyframes to a licensed manifest, a job
watched in the background (loss, preview), cancel, resume, and the model it publishes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from plateforge.client import Client
from plateforge.errors import LicenceError, UsageError
from plateforge.exr import write_exr
from plateforge.frames import Frame
from plateforge.hosts.training import (
    KeyframeDataset,
    TrainingMonitor,
    TrainingRequest,
    artist_name,
    parse_keyframes,
    start_job,
    watch_in_background,
    write_manifest,
)
from plateforge.jobs_client import TrainingClient
from plateforge.manifest_format import check_for_training, load_manifest, pairs
from plateforge.manifests import Contributor
from plateforge.modelcards import read_model_card
from plateforge.sequences import frame_path
from tests.conftest import ServerProcess, start_server
from tests.plateforge_server.training.helpers import look

KEYFRAMES = (1001, 1010, 1020)
#: Small enough for a CPU in a test: one 16-pixel crop per step.
FAST = {"batch": 1, "crop": 16, "warmup": 1, "validation_size": 32}


@pytest.fixture(scope="module")
def training_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("training-server")
    proc = start_server("--models-dir", str(root / "models"), "--jobs-dir", str(root / "jobs"))
    yield proc
    proc.stop()


@pytest.fixture
def live(training_server: ServerProcess) -> Iterator[Client]:
    with Client(training_server.address, token=training_server.token, timeout=120.0) as client:
        yield client


def render_keyframes(folder: Path, keyframes: tuple[int, ...] = KEYFRAMES) -> KeyframeDataset:
    """What the panel's internal Writes do: input and ground truth at each keyframe."""
    dataset = KeyframeDataset(folder)
    rng = np.random.default_rng(1)
    for number in keyframes:
        image = rng.uniform(0.02, 1.0, size=(32, 32, 3)).astype(np.float32)
        for pattern, pixels in ((dataset.input_pattern, image), (dataset.target_pattern, look(image))):
            path = Path(frame_path(pattern, number))
            path.parent.mkdir(parents=True, exist_ok=True)
            write_exr(path, Frame.from_array(pixels, names=("R", "G", "B")))
    return dataset


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1001, 1020, 1050", [1001, 1020, 1050], id="commas"),
        pytest.param("1050 1001 1020", [1001, 1020, 1050], id="spaces-sorted"),
        pytest.param("1001-1021x10,1001", [1001, 1011, 1021], id="range-with-repeat"),
    ],
)
def test_parse_keyframes(text: str, expected: list[int]) -> None:
    assert parse_keyframes(text) == expected


@pytest.mark.parametrize("text", [pytest.param("", id="empty"), pytest.param("10-x", id="garbage")])
def test_parse_keyframes_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_keyframes(text)


def test_the_manifest_is_what_the_server_reads(tmp_path: Path) -> None:
    dataset = render_keyframes(tmp_path / "sh010 kf")
    awkward = 'tab\there, DEL \x7f, "quoted", back\\slash, ü'
    path = write_manifest(
        dataset,
        name='sh010 "look"',
        keyframes=KEYFRAMES,
        licence="LicenseRef-acme-sow-17",
        rights_holder="ACME",
        description=awkward,
    )
    manifest = load_manifest(path)
    assert manifest.name == 'sh010 "look"' and manifest.description == awkward
    files = check_for_training(manifest)
    assert len(files) == 2 * len(KEYFRAMES) and {f.licence for f in files} == {"LicenseRef-acme-sow-17"}
    grouped = pairs(files)
    assert [p.frame for p in grouped] == list(KEYFRAMES)
    assert grouped[0].files["target"].path == Path(frame_path(dataset.target_pattern, 1001))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"licence": ""}, "licence and rights holder", id="no-licence"),
        pytest.param({"rights_holder": " "}, "licence and rights holder", id="no-rights-holder"),
        pytest.param({"keyframes": (1001, 1030)}, r"target\.1030\.exr", id="keyframe-not-rendered"),
        pytest.param({"keyframes": ()}, "no keyframes", id="no-keyframes"),
    ],
)
def test_manifest_refuses_before_the_server_does(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    dataset = render_keyframes(tmp_path)
    args: dict[str, object] = {"name": "kf", "keyframes": KEYFRAMES, "licence": "CC-BY-4.0", "rights_holder": "ACME"}
    with pytest.raises(UsageError, match=message):
        write_manifest(dataset, **{**args, **changes})  # type: ignore[arg-type]


def test_train_watch_and_the_model_is_served(live: Client, tmp_path: Path) -> None:
    dataset = render_keyframes(tmp_path / "kf")
    request = TrainingRequest(
        dataset=dataset,
        keyframes=KEYFRAMES,
        licence="CC-BY-4.0",
        rights_holder="Test Pictures",
        steps=6,
        model_name="nuke-look",
        extra=FAST,
        artist="Ana Ruiz",
    )
    job = start_job(live, request)
    assert job.state in ("QUEUED", "RUNNING") and job.steps == 6
    monitor = TrainingMonitor(preview_path=dataset.preview_path)
    updates: list[str] = []
    task = watch_in_background(
        live, job.id, monitor, preview_interval=0.01, on_progress=lambda update: updates.append(update.message)
    )
    final = task.wait(timeout=240)
    assert updates and "succeeded" in updates[-1]
    assert final is not None and final.state == "SUCCEEDED", monitor.status()
    assert [step for step, _ in monitor.losses][-1] == 6
    assert all(np.isfinite(loss) for _, loss in monitor.losses)
    assert "succeeded" in monitor.status() and final.model_dir in monitor.status()
    assert monitor.previews_written >= 1 and dataset.preview_path.read_bytes().startswith(b"\x89PNG")
    # The loss chart streams beside the preview, for the host's panel.
    assert monitor.loss_path == dataset.preview_path.with_name("loss.png")
    assert monitor.loss_charts_written >= 1 and monitor.loss_path.read_bytes().startswith(b"\x89PNG")
    # Both are, byte for byte, the final pictures the server wrote in the job's folder.
    out = Path(final.job_dir) / "train"
    assert monitor.loss_path.read_bytes() == (out / "loss.png").read_bytes()
    assert dataset.preview_path.read_bytes() == (out / "preview.png").read_bytes()
    assert dataset.loss_path == monitor.loss_path
    served = {m.name: m for m in live.list_models()}
    assert "nuke-look" in served and served["nuke-look"].tool == "look"
    assert monitor.as_dict()["state"] == "SUCCEEDED"
    # The artist is credited on the target keyframes, in the manifest and on the model's card.
    card = read_model_card(final.model_dir)
    credited = {s["path"]: s.get("contributors", []) for s in card["sources"]}
    assert credited["target/target.1001.exr"] == [{"name": "Ana Ruiz", "role": "grade"}]
    assert credited["input/input.1001.exr"] == []


def test_cancel_and_resume(live: Client, tmp_path: Path) -> None:
    dataset = render_keyframes(tmp_path / "kf")
    request = TrainingRequest(
        dataset=dataset,
        keyframes=KEYFRAMES,
        licence="CC-BY-4.0",
        rights_holder="Test Pictures",
        steps=5000,
        extra={**FAST, "checkpoint_every": 2},
    )
    jobs = TrainingClient(live)
    job = start_job(live, request)
    monitor = TrainingMonitor()
    task = watch_in_background(live, job.id, monitor)
    jobs.cancel(job.id)  # the panel's Cancel: the job checkpoints and ends, and so does the watch
    final = task.wait(timeout=120)
    assert final is not None and final.state == "CANCELLED"
    resumed = jobs.resume(job.id)
    assert resumed.state in ("QUEUED", "RUNNING")
    again = TrainingMonitor()
    task = watch_in_background(live, job.id, again)
    jobs.cancel(job.id)
    final = task.wait(timeout=120)
    assert final is not None and final.state == "CANCELLED" and final.step >= (monitor.job.step if monitor.job else 0)


def test_unlicensed_keyframes_are_refused_by_the_server(live: Client, tmp_path: Path) -> None:
    dataset = render_keyframes(tmp_path / "kf")
    request = TrainingRequest(dataset=dataset, keyframes=KEYFRAMES, licence="NOASSERTION", rights_holder="ACME")
    with pytest.raises(LicenceError, match=r"input/input\.1001\.exr"):
        start_job(live, request)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"tool": "cleanup"}, "cannot be trained from keyframe pairs", id="tool"),
        pytest.param({"size": "huge"}, "model size 'huge'", id="size"),
        pytest.param({"steps": 0}, "at least 1", id="steps"),
    ],
)
def test_bad_requests_are_refused(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    request = TrainingRequest(
        dataset=KeyframeDataset(tmp_path), keyframes=KEYFRAMES, licence="x", rights_holder="y", **changes
    )  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=message):
        request.params()


def test_the_artist_comes_from_the_preference_else_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLATEFORGE_ARTIST", " studio:4411 ")
    assert artist_name("Ana Ruiz") == "Ana Ruiz" and artist_name("  ") == "studio:4411"
    monkeypatch.delenv("PLATEFORGE_ARTIST")
    assert artist_name() == ""
    dataset = render_keyframes(tmp_path)
    base = {"dataset": dataset, "keyframes": KEYFRAMES, "licence": "CC-BY-4.0", "rights_holder": "ACME"}
    assert TrainingRequest(**base).contributors() == ()  # type: ignore[arg-type]
    matte = TrainingRequest(**base, tool="matte", artist="Ana Ruiz")  # type: ignore[arg-type]
    assert matte.contributors() == (Contributor("Ana Ruiz", "keyframe matte"),)
    painted = TrainingRequest(**base, artist="Ana Ruiz", artist_role="paint fix")  # type: ignore[arg-type]
    path = write_manifest(dataset, name="kf", keyframes=KEYFRAMES, licence="CC-BY-4.0", rights_holder="ACME",
                          contributors=painted.contributors())  # fmt: skip
    by_role = {s.role: s.contributors for s in load_manifest(path).sources}
    assert by_role == {"input": (), "target": (Contributor("Ana Ruiz", "paint fix"),)}
    with pytest.raises(UsageError, match="the artist to credit"):
        TrainingRequest(**base, artist="Ana\nRuiz").contributors()  # type: ignore[arg-type]
