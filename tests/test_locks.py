"""The install locks (locks/*.txt, made by scripts/lock.sh with pip-compile) pin, with hashes,
every dependency pyproject.toml declares, and the README's two set-up commands and .ci/run
install from them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# Python 3.11+ (the test install); mypy checks the tree as Python 3.10, which lacks it.
import tomllib  # type: ignore[import-not-found,unused-ignore]
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO

LOCKS = REPO / "locks"
#: Which extras each lock installs (as scripts/lock.sh compiles them).
INSTALLS = {"demo": ("server",), "test": ("server", "generative", "dev", "review", "postgres")}

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*\\?$")


def _pins(lock: Path) -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, its hashes), from a pip-compile output with --generate-hashes."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    current: str | None = None
    for line in lock.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            current = canonicalize_name(match.group(1))
            pins[current] = (Version(match.group(2)), [])
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            pins[current][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif line and not line.startswith(" "):
            current = None
    return pins


def _declared(*extras: str) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        declared += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return declared


def test_the_locks_cover_every_extra() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert set(extras) == {extra for wanted in INSTALLS.values() for extra in wanted}


@pytest.mark.parametrize("install", sorted(INSTALLS))
def test_lock_pins_every_declared_dependency_with_hashes(install: str) -> None:
    pins = _pins(LOCKS / f"{install}.txt")
    assert len(pins) > 10
    problems = []
    for requirement in _declared(*INSTALLS[install]):
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not in locks/{install}.txt")
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"locks/{install}.txt pins {name}=={pins[name][0]}, outside {requirement}")
    unhashed = sorted(name for name, (_, hashes) in pins.items() if not hashes)
    assert not problems, "run scripts/lock.sh: " + "; ".join(problems)
    assert not unhashed, f"pinned without a hash in locks/{install}.txt: {unhashed}"
    # The build backend of `pip install --no-build-isolation -e .` comes from the lock too.
    assert {"setuptools", "wheel"} <= set(pins)
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for _, hashes in pins.values() for h in hashes)


def test_torch_is_the_cpu_build_constraints_txt_names() -> None:
    pinned = [Requirement(line) for line in (REPO / "constraints.txt").read_text().splitlines() if line[:1].isalpha()]
    (torch,) = [r for r in pinned if r.name == "torch"]
    assert str(torch.specifier) == "==2.13.0+cpu"
    for install in INSTALLS:
        assert _pins(LOCKS / f"{install}.txt")["torch"][0] == Version("2.13.0+cpu")


def _readme_commands() -> dict[str, str]:
    """The README's set-up commands: every ```sh line that makes the virtualenv."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.startswith("python3.11 -m venv .venv")]
    return {("test" if line.endswith("python -m pytest") else "demo"): line for line in lines}


def test_readme_and_ci_install_from_the_locks() -> None:
    commands = _readme_commands()
    assert sorted(commands) == ["demo", "test"], commands
    for install, command in commands.items():
        assert f"pip install -q --require-hashes -r locks/{install}.txt && " in command
        assert ".venv/bin/pip install -q --no-deps --no-build-isolation -e . && " in command
    assert commands["demo"].endswith(".venv/bin/plateforge demo")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert commands["test"] in ci.splitlines(), ".ci/run must run the README's test command exactly"


def test_lock_script_compiles_both_installs() -> None:
    script = (REPO / "scripts" / "lock.sh").read_text(encoding="utf-8")
    for install, extras in INSTALLS.items():
        assert f"compile locks/{install}.txt {' '.join(extras)}" in script
    assert "--generate-hashes" in script and "--constraint constraints.txt" in script
    for install in INSTALLS:
        assert "#    scripts/lock.sh" in (LOCKS / f"{install}.txt").read_text(encoding="utf-8")
