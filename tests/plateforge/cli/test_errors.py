"""What the `plateforge` command says when things go wrong, as a user meets it: the real command in a
subprocess, real servers on loopback, real EXR files. Each case checks the sentence that names the
fix, the exit status (plateforge.messages), that no traceback or raw gRPC log line reaches the user,
and that no input file changed."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plateforge.messages import EXIT_REFUSED, EXIT_UNREACHABLE
from plateforge.shots.synthetic import make_shot, write_shot
from tests.conftest import ServerProcess, start_server
from tests.plateforge_server.training.helpers import write_shot_dataset

#: Item 7 of issue 19: a wrong or dead server address is told within this many seconds.
FAST_FAIL_SECONDS = 2.0


def plateforge(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], float]:
    """The command's result and its wall-clock seconds, start to exit."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    base["PLATEFORGE_JOBS_DIR"] = tempfile.mkdtemp(prefix="plateforge-jobs-")
    base["PLATEFORGE_MODELS_DIR"] = str(Path(base["PLATEFORGE_JOBS_DIR"]) / "no-models")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "plateforge.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
    )
    return result, time.monotonic() - started


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    """No Python traceback and no gRPC core log line (``E1207 12:00:00 … chttp2_server.cc``)."""
    assert "Traceback" not in result.stderr, result.stderr
    assert ".cc:" not in result.stderr and "grpc" not in result.stderr.lower(), result.stderr


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shot")
    write_shot(make_shot(width=64, height=48, frames=3, seed=5), folder)
    return folder


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A port that accepts TCP connections and never speaks: a hung or foreign service."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


# -- item 7: a server address that leads nowhere is told at once, with what to check ----------------


@pytest.mark.parametrize(
    ("address", "code", "sentence"),
    [
        pytest.param(
            "127.0.0.1:{free}",
            EXIT_UNREACHABLE,
            "no plateforge server at 127.0.0.1:{free}: start one with `plateforge serve`, or check --server / "
            "PLATEFORGE_SERVER",
            id="nothing-listening",
        ),
        pytest.param(
            "nosuchhost.invalid:50061", EXIT_REFUSED, "cannot find the host 'nosuchhost.invalid'", id="unknown-host"
        ),
        pytest.param(
            "http://127.0.0.1:{free}",
            EXIT_REFUSED,
            "drop the 'http://': plateforge speaks gRPC, write HOST:PORT (here: 127.0.0.1:{free})",
            id="url-scheme",
        ),
        pytest.param(
            "127.0.0.1", EXIT_REFUSED, "'127.0.0.1' has no port: write HOST:PORT (e.g. 127.0.0.1:50061", id="no-port"
        ),
        pytest.param("localhost:99999", EXIT_REFUSED, "the port must be a number from 1 to 65535", id="bad-port"),
    ],
)
@pytest.mark.parametrize("given", ["--server", "PLATEFORGE_SERVER"])
def test_a_bad_server_address_is_told_at_once(address: str, code: int, sentence: str, given: str) -> None:
    port = free_port()
    address, sentence = address.format(free=port), sentence.format(free=port)
    if given == "--server":
        result, seconds = plateforge("models", "--server", address)
    else:
        result, seconds = plateforge("models", env={"PLATEFORGE_SERVER": address})
    assert result.returncode == code, result.stderr
    assert sentence in result.stderr, result.stderr
    assert seconds < FAST_FAIL_SECONDS, f"{seconds:.2f} s"
    assert "Traceback" not in result.stderr


def test_a_port_that_never_answers_is_given_up_on_within_the_deadline(silent_listener: str) -> None:
    result, seconds = plateforge("models", "--server", silent_listener)
    assert result.returncode == EXIT_UNREACHABLE, result.stderr
    assert f"nothing answered at {silent_listener}: check --server / PLATEFORGE_SERVER" in result.stderr
    assert "details: " in result.stderr and "no connection within 1 s" in result.stderr
    # The whole 1 s connect deadline is spent here (nothing refuses), on top of the start-up that
    # the other cases measure: half a second more than they are allowed on a loaded test machine.
    assert seconds < FAST_FAIL_SECONDS + 0.5, f"{seconds:.2f} s"
    assert "Traceback" not in result.stderr


def test_process_against_a_dead_server_fails_fast_and_leaves_the_plates(shot: Path, tmp_path: Path) -> None:
    before = hashes(shot)
    address = f"127.0.0.1:{free_port()}"
    result, seconds = plateforge(
        "process", "--model", "cleanup-classical", "--input", str(shot / "plate.####.exr"), "--frames", "1001-1003",
        "--output", str(tmp_path / "out" / "o.####.exr"), "--server", address, "--summary", str(tmp_path / "s.json"),
    )  # fmt: skip
    assert result.returncode == EXIT_UNREACHABLE, result.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["status"] == "failed" and summary["exit_code"] == EXIT_UNREACHABLE  # what a farm wrapper reads
    assert f"no plateforge server at {address}" in result.stderr
    assert result.stderr.count("details: ") == 1 and "Connection refused" in result.stderr
    assert seconds < FAST_FAIL_SECONDS, f"{seconds:.2f} s"
    assert "Traceback" not in result.stderr
    assert hashes(shot) == before and not (tmp_path / "out").exists()


# -- item 11: no traceback, no gRPC wording ----------------------------------------------------------


def test_a_jobs_dir_that_cannot_be_created_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"keep me")
    result, _ = plateforge("serve", "--port", "0", "--device", "cpu", "--jobs-dir", str(blocker / "jobs"))
    assert result.returncode == EXIT_REFUSED
    assert f"cannot create the jobs folder (--jobs-dir or PLATEFORGE_JOBS_DIR) '{blocker / 'jobs'}'" in result.stderr
    assert "a part of the path is a file, not a folder" in result.stderr
    assert "listening on" not in result.stdout
    assert_clean(result)
    assert blocker.read_bytes() == b"keep me"


def test_a_port_in_use_is_one_sentence(server: ServerProcess, tmp_path: Path) -> None:
    port = server.address.rpartition(":")[2]
    result, _ = plateforge("serve", "--port", port, "--device", "cpu", "--jobs-dir", str(tmp_path / "jobs"))
    assert result.returncode == EXIT_REFUSED
    assert f"port {port} on 127.0.0.1 is already in use (another plateforge serve?)" in result.stderr
    assert "--port 0 picks a free one" in result.stderr
    assert_clean(result)
    assert server.process.poll() is None  # the running server is untouched


@pytest.mark.parametrize(
    ("token", "sentence"),
    [
        pytest.param(
            "wrong",
            "the server refused the token: check --token / PLATEFORGE_TOKEN / the plugin's preferences",
            id="wrong",
        ),
        pytest.param(
            "",
            "the server needs a token: give it with --token / PLATEFORGE_TOKEN / the plugin's preferences",
            id="missing",
        ),
    ],
)
def test_a_refused_token_says_where_tokens_are_set(server: ServerProcess, token: str, sentence: str) -> None:
    result, _ = plateforge("models", "--server", server.address, *(["--token", token] if token else []))
    assert result.returncode == EXIT_REFUSED
    first, *rest = result.stderr.strip().splitlines()
    assert first == f"plateforge models: error: {sentence}", result.stderr
    assert rest and rest[0].startswith("details: ")  # the server's own words, for whoever debugs
    assert "Bearer" not in first and "metadata" not in first
    assert "Traceback" not in result.stderr


def test_composite_without_a_background_writes_nothing(server: ServerProcess, shot: Path, tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    for number in range(1001, 1004):  # any clean plate will do: the refusal comes before keying matters
        (clean / f"clean.{number}.exr").write_bytes((shot / f"plate.{number}.exr").read_bytes())
    before = hashes(shot) | {f"clean/{k}": v for k, v in hashes(clean).items()}
    out = tmp_path / "out"
    result, _ = plateforge(
        "process", "--model", "matte-classical", "--input", str(shot / "plate.####.exr"),
        "--in", f"clean_plate={clean / 'clean.####.exr'}", "--frames", "1001-1003",
        "--output", f"alpha={out / 'alpha.####.exr'}", "--output", f"composite={out / 'comp.####.exr'}",
        "--server", server.address, "--token", server.token or "",
    )  # fmt: skip
    assert result.returncode == EXIT_REFUSED, result.stderr
    assert "model 'matte-classical' made no 'composite' output (With a background" in result.stderr
    assert "inputs not given: background" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() or not list(out.iterdir())
    assert hashes(shot) | {f"clean/{k}": v for k, v in hashes(clean).items()} == before


# -- item 10: a tool name whose mode the dataset cannot feed is refused before a job exists ------------


def test_a_mistyped_tool_is_refused_before_queueing(server: ServerProcess, tmp_path: Path) -> None:
    manifest = write_shot_dataset(tmp_path / "shot")  # plate and mask roles: a cleanup dataset
    before = hashes(tmp_path / "shot")
    auth = ["--server", server.address, "--token", server.token or ""]
    result, seconds = plateforge("train", "--dataset", str(manifest), "--tool", "clean", "--steps", "2", *auth)
    assert result.returncode == EXIT_REFUSED, result.stderr
    err = result.stderr
    assert "cannot train tool 'clean': 'clean' is not a built-in tool, so it trains input -> target pairs" in err
    assert "needs files with the roles 'input', 'target'" in err and "the dataset has 'mask', 'plate'" in err
    assert "Did you mean cleanup?" in err
    assert "queued" not in err and "Traceback" not in err
    listed, _ = plateforge("jobs", "--json", *auth)
    assert listed.returncode == 0 and str(manifest) not in listed.stdout  # no job was created
    assert hashes(tmp_path / "shot") == before
    assert seconds < 30


def test_a_licence_refusal_names_each_file_once(server: ServerProcess, tmp_path: Path) -> None:
    folder = tmp_path / "shot"
    write_shot(make_shot(width=64, height=48, frames=3, seed=2), folder)
    manifest = folder / "dataset.toml"
    manifest.write_text(
        'schema = "plateforge.dataset/1"\nname = "unlicensed"\n'
        '[[sources]]\npath = "plate.*.exr"\nrole = "plate"\npermitted_uses = ["train"]\n',
        encoding="utf-8",
    )
    before = hashes(folder)
    result, _ = plateforge("train", "--dataset", str(manifest), "--tool", "cleanup", "--steps", "2",
                           "--server", server.address, "--token", server.token or "")  # fmt: skip
    assert result.returncode == EXIT_REFUSED, result.stderr
    assert "3 files ('plate.1001.exr', 'plate.1002.exr', 'plate.1003.exr') each has no licence" in result.stderr
    assert result.stderr.count("has no licence") == 1 and result.stderr.count("plate.1002.exr") == 1
    assert "Traceback" not in result.stderr
    assert hashes(folder) == before


# -- TLS on one side only: told as such, not as "no server" ----------------------------------------


def test_tls_on_one_side_only_is_told_as_such(server: ServerProcess, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    # A TLS client at a plaintext server.
    result, seconds = plateforge("models", "--server", server.address, "--tls-ca", str(cert))
    assert result.returncode == EXIT_UNREACHABLE, result.stderr
    assert f"no TLS connection to {server.address}: if that server does not serve TLS, drop --tls-ca" in result.stderr
    assert seconds < FAST_FAIL_SECONDS, f"{seconds:.2f} s"
    assert "ssl_transport_security" not in result.stderr and "Traceback" not in result.stderr
    # A plaintext client at a TLS server.
    tls = start_server("--tls-cert", str(cert), "--tls-key", str(key))
    try:
        result, seconds = plateforge("models", "--server", tls.address, "--token", tls.token or "")
    finally:
        tls.stop()
    assert result.returncode == EXIT_UNREACHABLE, result.stderr
    assert f"the server at {tls.address} closed the connection" in result.stderr
    assert "needs --tls-ca / PLATEFORGE_TLS_CA" in result.stderr
    assert seconds < FAST_FAIL_SECONDS, f"{seconds:.2f} s"
