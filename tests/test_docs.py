"""The README and docs/ as a user follows them: every ```sh / ```console block runs, in order, in
one temporary folder (README first: its quick start makes the demo's shot the pages use), with a
real local server where a block is marked `<!-- docs-test: server -->`; blocks marked
`<!-- docs-test: skip (REASON) -->` are not run. The output a ```console block shows is what its
commands print (abbreviated: see :func:`shown_output_is_printed`). Every relative link resolves
inside the repository. The conventions are written down in docs/README.md."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, ServerProcess, start_server
from tests.plateforge.review.certs import make_chain

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINKED = [*PAGES, REPO / "SECURITY.md"]
SHELLS = ("sh", "console")
BLOCK_TIMEOUT_S = 300

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!-- docs-test: (server|skip \((?P<reason>[^)]+)\)) -->$")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    marker: str  # "", "server" or "skip"
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    def shown_output(self) -> list[str]:
        """A console block's output lines (those that are not commands or their continuations)."""
        shown: list[str] = []
        continued = False
        for line in self.text.splitlines():
            if continued or line.startswith("$ "):
                continued = line.endswith("\\")
            elif line.strip():
                shown.append(line)
        return shown

    def script(self) -> str:
        if self.language == "sh":
            return self.text
        # console: the "$ " lines are commands (with their "\" continuations); the rest is output.
        commands: list[str] = []
        continued = False
        for line in self.text.splitlines():
            if continued or line.startswith("$ "):
                commands.append(line if continued else line[2:])
                continued = line.endswith("\\")
        return "\n".join(commands) + "\n"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` with the docs-test marker on the line before it, if any."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        previous = lines[i - 1] if i > 0 else ""
        marker = _MARKER.match(previous)
        kind = "" if marker is None else ("server" if marker.group(1) == "server" else "skip")
        found.append(Block(page, i + 1, fence.group(1), kind, "\n".join(lines[i + 1 : end]) + "\n"))
        i = end + 1
    return found


_HEX = re.compile(r"[0-9a-f]{8,}…?")


def _same_line(shown: str, printed: str) -> bool:
    """``shown`` stands for ``printed``: equal once every hash (8+ hex digits, maybe cut with "…")
    is a placeholder, or, when ``shown`` ends with "…", a prefix of it."""
    shown, printed = _HEX.sub("<hex>", shown.rstrip()), _HEX.sub("<hex>", printed.rstrip())
    return shown == printed or (shown.endswith("…") and printed.startswith(shown[:-1]))


def shown_output_is_printed(shown: list[str], printed: str) -> list[str]:
    """The lines of ``shown`` not found, in order, among the lines ``printed`` (a page may leave
    lines out, never add or change one); empty when the page tells the truth."""
    lines = iter(printed.splitlines())
    return [s for s in shown if not any(_same_line(s, p) for p in lines)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}


# -- the pages' structure ----------------------------------------------------------------------


def test_every_block_is_runnable_or_says_why_not() -> None:
    problems = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if line.startswith("<!-- docs-test") and not _MARKER.match(line):
                problems.append(f"{page.relative_to(REPO)}:{number}: unknown marker {line!r}")
    shell = [b for page in PAGES for b in blocks(page) if b.language in SHELLS]
    run = [b for b in shell if b.marker != "skip"]
    assert not problems, problems
    assert len(run) >= 10 and len(shell) > len(run), (len(run), len(shell))
    # Every page a newcomer is sent to from the README has something that runs.
    for name in ("README.md", "docs/cli.md", "docs/datasets.md", "docs/python-api.md"):
        assert any(b.page == REPO / name for b in run), name


def test_links_resolve_inside_the_repository() -> None:
    problems = []
    for page in LINKED:
        for target in _LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(REPO)} -> {target}"
            if not resolved.is_relative_to(REPO):
                problems.append(f"{where}: outside the repository")
            elif not resolved.exists():
                problems.append(f"{where}: no such file")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                problems.append(f"{where}: no heading with that anchor")
    # A newcomer reads the README in a clone on its own: it names no file outside it, linked or not.
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for path in re.findall(r"`(\.\./[^`\s]+)`", readme):
        if not (REPO / path).resolve().is_relative_to(REPO):
            problems.append(f"README.md names {path}, outside the repository")
    assert not problems, "\n".join(problems)


def test_readme_is_short_and_links_every_page() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 80
    for page in PAGES[1:]:
        if page.name != "README.md":
            assert f"(docs/{page.name})" in readme, f"README does not link docs/{page.name}"


# -- running the blocks ------------------------------------------------------------------------


@dataclass
class Workspace:
    folder: Path
    env: dict[str, str]
    server: ServerProcess | None = None

    def run(self, block: Block) -> None:
        env = dict(self.env)
        if block.marker == "server":
            if self.server is None:  # hermetic too: the workspace's empty models and jobs folders
                models, jobs = self.env["PLATEFORGE_MODELS_DIR"], self.env["PLATEFORGE_JOBS_DIR"]
                self.server = start_server("--models-dir", models, "--jobs-dir", jobs)
            env |= {"PLATEFORGE_SERVER": self.server.address, "PLATEFORGE_TOKEN": self.server.token or ""}
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block.script()],
            cwd=self.folder, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S,
        )  # fmt: skip
        assert done.returncode == 0, (
            f"{block.where} exited {done.returncode}:\n{block.text}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
        if block.language == "console":
            missing = shown_output_is_printed(block.shown_output(), done.stdout)
            assert not missing, f"{block.where} shows lines its commands did not print: {missing}\n{done.stdout}"

    def run_page(self, page: Path) -> int:
        ran = 0
        for block in blocks(page):
            if block.language in SHELLS and block.marker != "skip":
                self.run(block)
                ran += 1
        return ran


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A folder where the README's quick start has run, as after its set-up command: `.venv` is
    this Python's environment, `plateforge` is on PATH; no server or token in the environment, and
    empty models and jobs folders (never the trained models of whoever runs the tests). The
    studio's C2PA signing keys the pages name are a throwaway chain: studio-chain.pem (signing
    certificate and intermediate), studio-key.pem, and the root to trust, studio-root.pem."""
    folder = tmp_path_factory.mktemp("docs")
    (folder / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    chain = make_chain(tmp_path_factory.mktemp("docs-pki"))
    shutil.copyfile(chain.cert, folder / "studio-chain.pem")
    shutil.copyfile(chain.key, folder / "studio-key.pem")
    (folder / "studio-root.pem").write_bytes(chain.root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PLATEFORGE_MODELS_DIR"] = str(tmp_path_factory.mktemp("docs-models"))
    env["PLATEFORGE_JOBS_DIR"] = str(tmp_path_factory.mktemp("docs-jobs"))
    space = Workspace(folder, env)
    space.run_page(REPO / "README.md")
    yield space
    if space.server is not None:
        assert space.server.stop() == 0


def test_readme_quick_start(workspace: Workspace) -> None:
    folder = workspace.folder
    for n in range(1001, 1006):
        for made in (
            f"plateforge-demo/plate.{n}.exr",
            f"plateforge-demo/cleaned/cleaned.{n}.exr",
            f"clean/clean.{n}.exr",
        ):
            assert (folder / made).is_file(), made
    assert (folder / "plateforge-demo" / "contact_sheet.png").is_file()
    # The signed proxy the README reads back, and the EXR's detached manifest.
    assert (folder / "review/clean.1003.png").is_file() and (folder / "clean/clean.1003.exr.c2pa").is_file()


@pytest.mark.parametrize(
    ("shown", "printed", "missing"),
    [
        pytest.param(["a: Trusted", "  model m@1"], "a: Trusted\n  x\n  model m@1\n", [], id="lines-left-out"),
        pytest.param(["  sha256 6c5c337acff9…"], "  sha256 " + "0123456789abcdef" * 4 + "\n", [], id="hash-cut"),
        pytest.param(["  note: very long…"], "  note: very long text\n", [], id="line-cut"),
        pytest.param(["a: Trusted"], "a: Invalid (assertion.dataHash.mismatch)\n", ["a: Trusted"], id="changed"),
        pytest.param(["b", "a"], "a\nb\n", ["a"], id="out-of-order"),
        pytest.param(["  model m@1"], "  model m@2\n", ["  model m@1"], id="other-version"),
    ],
)
def test_shown_output_must_be_printed(shown: list[str], printed: str, missing: list[str]) -> None:
    assert shown_output_is_printed(shown, printed) == missing


def _cli_page(folder: Path) -> None:
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "done" and summary["exit_code"] == 0, summary
    assert all((folder / f"matte/{kind}.{n}.exr").is_file() for kind in ("alpha", "comp") for n in range(1001, 1009))
    assert json.loads((folder / "jobs.json").read_text()) == []
    models = {m["name"] for m in json.loads((folder / "models.json").read_text())}
    assert {"passthrough", "cleanup-classical", "matte-classical", "relight-classical"} <= models


def _datasets_page(folder: Path) -> None:
    manifest = (folder / "plateforge-demo" / "shot.toml").read_text()
    assert len(re.findall(r'= "[0-9a-f]{64}"', manifest)) == 10  # 5 plates, 5 masks


def _python_api_page(folder: Path) -> None:
    assert all((folder / f"api/clean.{n}.exr").is_file() for n in range(1001, 1006))
    assert (folder / "api/one.1003.exr").is_file()


#: Loose checks on what a page's commands made: files and exit codes, not sentences.
MADE = {"cli.md": _cli_page, "datasets.md": _datasets_page, "python-api.md": _python_api_page}


@pytest.mark.parametrize("page", PAGES[1:], ids=lambda p: p.relative_to(REPO).as_posix())
def test_page_blocks_run(workspace: Workspace, page: Path) -> None:
    workspace.run_page(page)
    if page.name in MADE:
        MADE[page.name](workspace.folder)
