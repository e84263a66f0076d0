"""`plateforge lineage` on the show of tests/plateforge/lineage/tree.py, against SQLite and PostgreSQL: the
index holds what the files say, `affected` returns exactly the models and frames that depend on
a source, licence or model, `credits` counts exactly, re-indexing reads only what changed."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from openjd.model import IntRangeExpr

from plateforge.cli.main import main
from plateforge.errors import LineageIndexError, UsageError
from plateforge.exr import read_exr, write_exr
from plateforge.frames import Frame
from plateforge.lineage import (
    SCHEMA_VERSION,
    Credit,
    affected,
    credits,
    credits_html,
    frame_ranges,
    index_paths,
    open_index,
    parse_since,
)
from plateforge.modelcards import read_model_card
from plateforge.provenance import record as provenance_record
from tests.plateforge.lineage.tree import FRAMES, Tree


def lineage(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["lineage", *args])
    out, err = capsys.readouterr()
    return code, out, err


def frames_of(root: Path, *sequences: str) -> set[str]:
    return {str(root / "out" / s / f"{s}.{n}.exr") for s in sequences for n in FRAMES}


@pytest.fixture
def indexed(tree: Tree, db_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = lineage(capsys, "index", str(tree.root), "--db", db_url)
    assert code == 0, err
    assert "0 unreadable" not in out and " 0 added" not in out
    return db_url


# -- the tree itself -----------------------------------------------------------------------------


def test_the_fine_tune_records_its_parent_and_both_cards_their_contributors(tree: Tree) -> None:
    card_a, card_b = read_model_card(tree.model_a), read_model_card(tree.model_b)
    assert "parent" not in card_a
    assert card_b["parent"] == {"name": "shotA-look", "version": card_a["version"], "sha256": card_a["weights_sha256"]}
    assert card_b["training"]["init"].endswith("/model")
    people_a = {(c["name"], c["role"]) for s in card_a["sources"] for c in s.get("contributors", [])}
    assert people_a == {("Ben Okafor", "plate photography"), ("Ana Ruiz", "keyframe matte")}
    by_source = {s["path"]: s.get("contributors", []) for s in card_b["sources"]}
    assert by_source["out/img.1001.exr"] == [{"name": "Cleo Park", "role": "grade"}]
    assert by_source["in/img.1001.exr"] == []
    assert len(tree.outputs) == 40


# -- affected ------------------------------------------------------------------------------------


def test_a_source_of_the_fine_tune_affects_it_and_its_frames_only(
    tree: Tree, indexed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tree.root / "data/shotB/out/img.1002.exr"
    code, out, err = lineage(capsys, "affected", "--source", str(source), "--db", indexed)
    assert code == 0, err
    result = json.loads(out)
    assert [(m["name"], m["why"]) for m in result["models"]] == [("shotB-look", "trained on it")]
    assert {f["path"] for f in result["frames"]} == frames_of(tree.root, "b-p1", "b-p2")
    code, out, _ = lineage(capsys, "affected", "--source", str(source), "--format", "frames", "--db", indexed)
    assert out.splitlines() == [
        f"{tree.root}/out/b-p1/b-p1.####.exr\t1001-1010",
        f"{tree.root}/out/b-p2/b-p2.####.exr\t1001-1010",
    ]


def test_a_source_of_the_parent_affects_the_fine_tune_too(
    tree: Tree, indexed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = lineage(capsys, "affected", "--source", str(tree.root / "data/shotA/in"), "--db", indexed)
    result = json.loads(out)
    assert {(m["name"], m["why"]) for m in result["models"]} == {
        ("shotA-look", "trained on it"),
        ("shotB-look", "fine-tuned from shotA-look@" + read_model_card(tree.model_a)["version"]),
    }
    # The published copy and the job's folder hold one model.
    (model_a,) = [m for m in result["models"] if m["name"] == "shotA-look"]
    assert str(tree.model_a) in model_a["folders"] and len(model_a["folders"]) == 2
    assert {f["path"] for f in result["frames"]} == frames_of(tree.root, "a-p1", "a-c", "b-p1", "b-p2")


def test_a_folder_no_manifest_lists_is_hashed_and_found_by_content(
    tree: Tree, indexed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(tree.root / "data/shotB/out", tmp_path / "delivered")  # the same bytes, elsewhere
    _, out, _ = lineage(capsys, "affected", "--source", str(tmp_path / "delivered"), "--db", indexed)
    assert [m["name"] for m in json.loads(out)["models"]] == ["shotB-look"]
    code, _, err = lineage(capsys, "affected", "--source", str(tmp_path / "nothing"), "--db", indexed)
    assert code == 2 and "no such file or folder" in err


def test_a_plate_processed_directly_affects_the_frames_made_from_it(
    tree: Tree, indexed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plate = tree.root / "data/shotC/in/img.1003.exr"
    _, out, _ = lineage(capsys, "affected", "--source", str(plate), "--format", "csv", "--db", indexed)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["kind"], r["path"], r["frame"], r["why"]) for r in rows] == [
        ("frame", str(tree.root / "out/a-c/a-c.1003.exr"), "1003", "made from the withdrawn material")
    ]


@pytest.mark.parametrize(
    ("licence", "models", "sequences"),
    [
        pytest.param("CC-BY-4.0", {"shotA-look", "shotB-look"}, ("a-p1", "a-c", "b-p1", "b-p2"), id="parent"),
        pytest.param("LicenseRef-shotB", {"shotB-look"}, ("b-p1", "b-p2"), id="fine-tune"),
        pytest.param("LicenseRef-shotC", set(), ("a-c",), id="processed-only"),
        pytest.param("LicenseRef-none", set(), (), id="unused"),
    ],
)
def test_a_licence_affects_exactly_what_depends_on_it(
    tree: Tree, indexed: str, licence: str, models: set[str], sequences: tuple[str, ...]
) -> None:
    with open_index(indexed) as db:
        result = affected(db, licence=licence)
    assert {m.name for m in result.models} == models
    assert {f.path for f in result.frames} == frames_of(tree.root, *sequences)


def test_a_model_affects_its_fine_tunes(tree: Tree, indexed: str, capsys: pytest.CaptureFixture[str]) -> None:
    card_b = read_model_card(tree.model_b)
    for given in ("shotB-look", f"shotB-look@{card_b['version']}", str(tree.model_b)):
        with open_index(indexed) as db:
            result = affected(db, model=given)
        assert [m.name for m in result.models] == ["shotB-look"]
        assert {f.path for f in result.frames} == frames_of(tree.root, "b-p1", "b-p2")
    code, _, err = lineage(capsys, "affected", "--model", "nope", "--db", indexed)
    assert code == 2 and "no indexed model or frame" in err and "shotA-look@" in err


# -- credits -------------------------------------------------------------------------------------


def test_credits_count_exactly(tree: Tree, indexed: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = lineage(capsys, "credits", "--format", "json", "--db", indexed)
    assert code == 0, err
    version_a = read_model_card(tree.model_a)["version"]
    version_b = read_model_card(tree.model_b)["version"]
    both = [f"shotA-look@{version_a}", f"shotB-look@{version_b}"]
    four = sorted(str(tree.root / "out" / s / f"{s}.####.exr") for s in ("a-c", "a-p1", "b-p1", "b-p2"))
    assert json.loads(out) == [
        {"name": "Ana Ruiz", "roles": ["keyframe matte"], "models": both, "frames": 40, "shots": four},
        {"name": "Ben Okafor", "roles": ["plate photography"], "models": both, "frames": 40, "shots": four},
        {"name": "Cleo Park", "roles": ["grade"], "models": both[1:], "frames": 20, "shots": four[2:]},
        {"name": "Dev Shah", "roles": ["paint fix"], "models": [], "frames": 0, "shots": []},
    ]
    with open_index(indexed) as db:  # out/b-p2 was written in 2020
        recent = {c.name: (c.frames, len(c.shots)) for c in credits(db, since_ns=parse_since("2024-01-01"))}
        future = {c.name: c.frames for c in credits(db, since_ns=parse_since("2999-01-01"))}
    assert recent == {"Ana Ruiz": (30, 3), "Ben Okafor": (30, 3), "Cleo Park": (10, 1), "Dev Shah": (0, 0)}
    assert set(future.values()) == {0}


def test_the_credits_page_has_a_table_and_a_bar_chart(
    tree: Tree, indexed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "credits.html"
    code, _, err = lineage(capsys, "credits", "--format", "html", "--output", str(page), "--db", indexed)
    assert code == 0, err
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text
    assert text.count("<rect ") == 4 and '<table id="credits">' in text
    assert "<td>Cleo Park</td><td>grade</td>" in text and '<td class="n">20</td>' in text
    code, out, _ = lineage(capsys, "credits", "--db", indexed)
    assert list(csv.reader(io.StringIO(out)))[1:] == [
        ["Ana Ruiz", "keyframe matte", f"shotA-look@{read_model_card(tree.model_a)['version']}; "
         f"shotB-look@{read_model_card(tree.model_b)['version']}", "40", "4"],
        ["Ben Okafor", "plate photography", f"shotA-look@{read_model_card(tree.model_a)['version']}; "
         f"shotB-look@{read_model_card(tree.model_b)['version']}", "40", "4"],
        ["Cleo Park", "grade", f"shotB-look@{read_model_card(tree.model_b)['version']}", "20", "2"],
        ["Dev Shah", "paint fix", "", "0", "0"],
    ]  # fmt: skip


# -- one frame -----------------------------------------------------------------------------------


def test_frame_prints_the_whole_chain(tree: Tree, indexed: str, capsys: pytest.CaptureFixture[str]) -> None:
    frame = tree.root / "out/b-p1/b-p1.1004.exr"
    code, out, err = lineage(capsys, "frame", str(frame), "--json", "--db", indexed)
    assert code == 0, err
    chain = json.loads(out)
    assert chain["provenance"]["sourceFile"] == str(tree.root / "plates/p1/p1.1004.exr")
    assert [m["name"] for m in chain["models"]] == ["shotB-look", "shotA-look"]
    assert chain["models"][1]["sha256"] == read_model_card(tree.model_a)["weights_sha256"]
    assert chain["contributors"] == [
        {"name": "Ana Ruiz", "role": "keyframe matte"},
        {"name": "Ben Okafor", "role": "plate photography"},
        {"name": "Cleo Park", "role": "grade"},
    ]
    code, out, _ = lineage(capsys, "frame", str(frame), "--db", indexed)
    assert "fine-tuned from shotA-look@" in out and "by Cleo Park (grade)" in out
    code, _, err = lineage(capsys, "frame", str(tree.root / "plates/p1/p1.1001.exr"), "--db", indexed)
    assert code == 2 and "carries no plateforge provenance" in err


# -- incremental ---------------------------------------------------------------------------------


def test_reindexing_reads_only_what_changed(tree: Tree, db_url: str, tmp_path: Path) -> None:
    show = tmp_path / "show"
    shutil.copytree(tree.root / "out", show / "out")  # copy2: sizes and mtimes kept
    shutil.copytree(tree.root / "models", show / "models")
    with open_index(db_url) as db:
        first = index_paths(db, [show])
        assert len(first.added) == 42 and not first.problems  # 40 frames, 2 models
        again = index_paths(db, [show])
        assert (again.added, again.updated, again.removed, again.unchanged) == ([], [], [], 42)

        changed = show / "out/a-p1/a-p1.1005.exr"
        frame = read_exr(changed)
        frame.channels["R"] = np.asarray(frame.channels["R"]) * 0.5
        write_exr(changed, frame)
        os.utime(changed, ns=(os.stat(changed).st_atime_ns, os.stat(changed).st_mtime_ns + 1_000_000_000))
        (show / "out/b-p2/b-p2.1010.exr").unlink()
        third = index_paths(db, [show])
        assert third.updated == [str(changed)] and third.added == [] and third.unchanged == 40
        assert third.removed == [str(show / "out/b-p2/b-p2.1010.exr")]
        touched = db.execute("SELECT path FROM indexed_files WHERE run = ?", (third.run,))
        assert touched == [(str(changed),)]
        assert db.execute("SELECT COUNT(*) FROM frames")[0][0] == 39
        assert db.execute("SELECT model FROM frames WHERE owner = ?", (str(changed),)) == [("shotA-look",)]


def test_a_damaged_file_is_reported_and_the_rest_indexed(
    tree: Tree, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(tree.root / "out/a-p1", tmp_path / "a-p1")
    damaged = tmp_path / "a-p1/a-p1.1001.exr"
    damaged.write_bytes(damaged.read_bytes()[:100])
    code, out, err = lineage(capsys, "index", str(tmp_path / "a-p1"), "--db", db_url)
    assert code == 1 and f"unreadable: {damaged}" in err and "9 added" in out


def test_a_newer_schema_is_refused(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):  # a migration is applied once, and recorded
        with open_index(db_url) as db:
            assert [row[0] for row in db.execute("SELECT version FROM lineage_schema")] == [SCHEMA_VERSION] == [1]
    with open_index(db_url) as db, db.transaction():
        db.execute("INSERT INTO lineage_schema (version, applied) VALUES (?, ?)", (99, "2999-01-01T00:00:00Z"))
    code, _, err = lineage(capsys, "credits", "--db", db_url)
    assert code == 2 and "schema version 99" in err and "knows versions 1" in err


def test_frames_of_a_built_in_tool_are_found_by_its_name(tmp_path: Path, db_url: str) -> None:
    # A built-in tool has no model folder; its frames still say what made them.
    record = provenance_record(model="cleanup-classical", modelVersion="1", modelHash="e" * 64, tool="cleanup")
    image = Frame.from_array(np.zeros((4, 4, 3), np.float32), names=("R", "G", "B"))
    for number in (1001, 1002, 1004):
        write_exr(tmp_path / f"clean.{number}.exr", image.replace(attributes=record))
    with open_index(db_url) as db:
        index_paths(db, [tmp_path])
        for given in ("cleanup-classical", "cleanup-classical@1", "e" * 64):
            result = affected(db, model=given)
            assert result.models == () and result.ranges() == {str(tmp_path / "clean.####.exr"): "1001-1002,1004"}
        with pytest.raises(UsageError, match="no indexed model or frame"):
            affected(db, model="cleanup-classical@2")


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        pytest.param([1001], "1001", id="one"),
        pytest.param([1003, 1001, 1002, 1002], "1001-1003", id="run-unsorted-repeated"),
        pytest.param([1, 2, 3, 5, 7, 8], "1-3,5,7-8", id="gaps"),
        pytest.param([-2, -1, 0, 1], "-2-1", id="negative"),
        pytest.param([], "", id="none"),
    ],
)
def test_frame_ranges_are_what_openjd_reads_back(frames: list[int], expected: str) -> None:
    text = frame_ranges(frames)
    assert text == expected
    if frames:
        assert list(IntRangeExpr.from_str(text)) == sorted(set(frames))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("/no/such/folder/lineage.sqlite", "the folder /no/such/folder does not exist", id="no-folder"),
        pytest.param("mysql://x@127.0.0.1/db", "give a file path, sqlite:///PATH or postgresql://", id="scheme"),
        pytest.param(
            "postgresql://me:s3cret@127.0.0.1:9/show",
            "cannot connect to the lineage index postgresql://me:***@",
            id="pg",
        ),
    ],
)
def test_an_index_that_cannot_be_opened_is_one_clear_error(url: str, expected: str) -> None:
    if url.startswith("postgresql"):
        pytest.importorskip("psycopg")
    with pytest.raises(LineageIndexError) as caught:
        open_index(url)
    assert expected in str(caught.value) and "s3cret" not in str(caught.value)


def test_the_credits_page_escapes_names_and_scales_the_bars() -> None:
    rows = [
        Credit('<script>alert("x")</script>', ("paint & fix",), ("m@1",), 30, ("/o/a.####.exr",)),
        Credit("Bo", ("grade",), (), 10, ()),
        Credit("Cy", ("grade",), (), 0, ()),
    ]
    page = credits_html(rows)
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "paint &amp; fix" in page
    assert re.findall(r'<rect x="\d+" y="\d+" width="(\d+)"', page) == ["420", "140", "0"]


# -- where the index is, and --show --------------------------------------------------------------


def test_the_index_is_the_current_folder_s_file_else_the_variable_else_db(
    tree: Tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sequence = str(tree.root / "out/a-p1")
    here, named, given = tmp_path / "here", tmp_path / "named.sqlite", tmp_path / "given.sqlite"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.delenv("PLATEFORGE_LINEAGE_DB", raising=False)
    code, out, err = lineage(capsys, "index", sequence)
    assert code == 0 and "10 added" in out and str(here / "plateforge-lineage.sqlite") in out, err
    monkeypatch.setenv("PLATEFORGE_LINEAGE_DB", f"sqlite:///{named}")
    code, out, err = lineage(capsys, "index", sequence)
    assert code == 0 and "10 added" in out, err  # a new index: nothing in it was known
    code, out, err = lineage(capsys, "index", sequence, "--db", str(given))
    assert code == 0 and "10 added" in out, err
    code, out, err = lineage(capsys, "index", sequence)  # the variable's index again: all known
    assert code == 0 and "10 unchanged" in out and " 0 added" in out, err
    made = sorted(p.name for p in tmp_path.rglob("*.sqlite"))
    assert made == ["given.sqlite", "named.sqlite", "plateforge-lineage.sqlite"]
    for db in (here / "plateforge-lineage.sqlite", named, given):
        with open_index(str(db)) as index:
            assert index.execute("SELECT COUNT(*) FROM frames")[0][0] == 10


def test_credits_show_writes_the_page_here_and_opens_it_in_the_browser(indexed: str, tmp_path: Path) -> None:
    # $BROWSER is how Python's webbrowser (and xdg-open) pick the browser: here, one that notes the URL.
    browser = tmp_path / "browser"
    browser.write_text('#!/bin/sh\nprintf "%s" "$1" > "$(dirname "$0")/opened.txt"\n')
    browser.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORGE_")} | {"BROWSER": str(browser)}
    command = [sys.executable, "-m", "plateforge.cli.main", "lineage", "credits", "--show", "--db", indexed]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    page = tmp_path / "plateforge-credits.html"
    assert done.stderr.strip().splitlines()[-1] == str(page)
    assert (tmp_path / "opened.txt").read_text() == page.as_uri()
    text = page.read_text(encoding="utf-8")
    assert '<table id="credits">' in text and text.count("<rect ") == 4 and "<td>Cleo Park</td>" in text
