"""Dataset manifests: valid and invalid manifests, registration, the training check, pairs, TOML."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomllib

from plateforge.errors import LicenceError, ManifestError, PlateforgeError
from plateforge_server.datasets import (
    KNOWN_SCHEMAS,
    Contributor,
    Manifest,
    Source,
    check_for_training,
    frame_number,
    load_manifest,
    pairs,
    register,
    to_toml,
)

HEADER = 'schema = "plateforge.dataset/1"\nname = "sh010-cleanup"\n'
TERMS = 'licence = "LicenseRef-acme-sow-17"\nrights_holder = "ACME Pictures"\n'


def source(path: str, *, terms: str = TERMS, uses: str = '["train", "evaluate"]', extra: str = "") -> str:
    return f'\n[[sources]]\npath = "{path}"\n{terms}permitted_uses = {uses}\n{extra}'


@pytest.fixture
def shot(tmp_path: Path) -> Path:
    """A shot folder: three plates, two artist fixes, a mask, and a stray hidden file."""
    for number in (1001, 1002, 1003):
        (tmp_path / "plates").mkdir(exist_ok=True)
        (tmp_path / "plates" / f"sh010.{number}.exr").write_bytes(f"plate {number}".encode())
    (tmp_path / "fixes" / "v2").mkdir(parents=True)
    for number in (1001, 1003):
        (tmp_path / "fixes" / "v2" / f"sh010_fix_{number}.exr").write_bytes(f"fix {number}".encode())
    (tmp_path / "plates" / ".sh010.1004.exr.tmp").write_bytes(b"half-copied")
    (tmp_path / "mask.1001.exr").write_bytes(b"mask")
    return tmp_path


def write_manifest(folder: Path, text: str, name: str = "dataset.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- valid manifests ------------------------------------------------------------------------------


def test_globs_relative_and_absolute_paths_resolve_sorted(shot: Path) -> None:
    text = (
        HEADER
        + source("plates/sh010.*.exr", extra='role = "input"\n')
        + source("fixes/**/sh010_fix_*.exr", extra='role = "target"\n')
        + source(str(shot / "mask.1001.exr"), uses='["train"]', extra='role = "mask"\n')
    )
    manifest = load_manifest(write_manifest(shot, text))
    files = manifest.resolve()
    assert [f.name for f in files] == [
        "plates/sh010.1001.exr",
        "plates/sh010.1002.exr",
        "plates/sh010.1003.exr",
        "fixes/v2/sh010_fix_1001.exr",
        "fixes/v2/sh010_fix_1003.exr",
        "mask.1001.exr",
    ]  # hidden files never match a glob; names are relative to the manifest's folder
    assert files[0].path == shot / "plates" / "sh010.1001.exr" and files[0].path.is_absolute()
    assert [f.frame for f in files] == [1001, 1002, 1003, 1001, 1003, 1001]
    assert [f.role for f in files] == ["input"] * 3 + ["target"] * 2 + ["mask"]
    assert files[0].permitted_uses == ("train", "evaluate") and files[0].licence == "LicenseRef-acme-sow-17"
    assert all(f.sha256 is None for f in files)
    assert manifest.resolve() == files  # deterministic


def test_manifest_elsewhere_resolves_relative_to_its_own_folder(shot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (shot / "meta").mkdir()
    path = write_manifest(shot / "meta", HEADER + source("../plates/*.exr"))
    monkeypatch.chdir(shot / "fixes")
    files = load_manifest(os.path.relpath(path)).resolve()
    assert [f.path for f in files] == sorted((shot / "plates").glob("sh010.*.exr"))
    assert files[0].name == str(shot / "plates" / "sh010.1001.exr")  # outside the folder: absolute


def test_register_records_hashes_and_training_accepts_them(shot: Path) -> None:
    text = "# sh010 paint-out\n# owner: comp dept\n" + HEADER + source("plates/*.exr") + source("mask.1001.exr")
    path = write_manifest(shot, text)
    registered = register(path)
    plates = sorted((shot / "plates").glob("sh010.*.exr"))
    assert registered.sources[0].sha256 == {f"plates/{p.name}": sha(p) for p in plates}
    assert registered.sources[1].sha256 == {"mask.1001.exr": sha(shot / "mask.1001.exr")}
    written = path.read_text()
    assert written.startswith("# sh010 paint-out\n# owner: comp dept\n")
    assert f'sha256 = "{sha(shot / "mask.1001.exr")}"' in written  # one file: a plain string
    assert "[sources.sha256]" in written  # a glob: a table of file -> hash
    assert load_manifest(path) == registered
    assert not [p for p in shot.iterdir() if p.name.endswith(".tmp")]
    files = check_for_training(registered)
    assert [(f.name, f.sha256) for f in files] == [(f.name, sha(f.path)) for f in registered.resolve()]


def test_training_on_unregistered_sources_records_the_hashes_now(shot: Path) -> None:
    files = check_for_training(load_manifest(write_manifest(shot, HEADER + source("plates/*.exr"))))
    assert [f.sha256 for f in files] == [sha(f.path) for f in files]


def test_registering_again_accepts_changed_files(shot: Path) -> None:
    path = write_manifest(shot, HEADER + source("plates/*.exr"))
    register(path)
    (shot / "plates" / "sh010.1002.exr").write_bytes(b"regraded")
    with pytest.raises(LicenceError):
        check_for_training(load_manifest(path))
    check_for_training(register(path))


def test_register_keeps_the_file_mode(shot: Path) -> None:
    path = write_manifest(shot, HEADER + source("plates/*.exr"))
    path.chmod(0o640)
    register(path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_register_refuses_missing_files_without_writing(shot: Path) -> None:
    text = HEADER + source("plates/*.exr") + source("gone.exr")
    path = write_manifest(shot, text)
    with pytest.raises(ManifestError, match=r"'gone\.exr' does not exist"):
        register(path)
    assert path.read_text() == text


# -- invalid manifests ----------------------------------------------------------------------------


def _change_a_plate(shot: Path, path: Path) -> None:
    register(path)
    (shot / "plates" / "sh010.1002.exr").write_bytes(b"someone painted on it")


def _remove_a_plate(shot: Path, path: Path) -> None:
    register(path)
    (shot / "plates" / "sh010.1003.exr").unlink()


def _add_a_plate(shot: Path, path: Path) -> None:
    register(path)
    (shot / "plates" / "sh010.1004.exr").write_bytes(b"new")


def _check(path: Path) -> object:
    return check_for_training(load_manifest(path))


def _resolve(path: Path) -> object:
    return load_manifest(path).resolve()


Prepare = Callable[[Path, Path], None] | None

INVALID: list[Any] = [
    # (manifest text, prepare(shot, manifest), action, error class, what the message must say)
    pytest.param(
        HEADER + source("plates/*.exr", terms='rights_holder = "ACME"\n'),
        None, _check, LicenceError, ["'plates/sh010.1001.exr'", "'plates/sh010.1003.exr'", "has no licence"],
        id="no-licence",
    ),
    pytest.param(
        HEADER + source("mask.1001.exr", terms='licence = "NONE"\nrights_holder = "ACME"\n'),
        None, _check, LicenceError, ["'mask.1001.exr'", "has no licence ('NONE')"],
        id="spdx-none-licence",
    ),
    pytest.param(
        HEADER + source("mask.1001.exr", terms='licence = "CC-BY-4.0"\n'),
        None, _check, LicenceError, ["'mask.1001.exr'", "has no rights holder"],
        id="no-rights-holder",
    ),
    pytest.param(
        HEADER + source("plates/sh010.1002.exr", uses='["infer", "evaluate"]'),
        None, _check, LicenceError,
        ["'plates/sh010.1002.exr'", "may not be used for training (permitted uses: infer, evaluate)"],
        id="forbids-training",
    ),
    pytest.param(
        HEADER + source("plates/sh010.1002.exr", uses="[]"),
        None, _check, LicenceError, ["'plates/sh010.1002.exr'", "permitted uses: nothing"],
        id="no-permitted-uses",
    ),
    pytest.param(
        HEADER + source("plates/sh010.1009.exr"),
        None, _check, LicenceError, ["'plates/sh010.1009.exr'", "does not exist"],
        id="missing-file",
    ),
    pytest.param(
        HEADER + source("plates"),
        None, _check, LicenceError, ["'plates'", "cannot be read as a file"],
        id="folder-not-file",
    ),
    pytest.param(
        HEADER + source("renders/*.exr"),
        None, _resolve, ManifestError, ["'renders/*.exr'", "matches no file"],
        id="glob-matching-nothing",
    ),
    pytest.param(
        HEADER + source("renders/*.exr"),
        None, _check, LicenceError, ["'renders/*.exr'", "matches no file"],
        id="glob-matching-nothing-in-training",
    ),
    pytest.param(
        HEADER + source("plates/*.exr"),
        _change_a_plate, _check, LicenceError,
        ["'plates/sh010.1002.exr'", "has changed since it was registered"],
        id="changed-after-registration",
    ),
    pytest.param(
        HEADER + source("plates/*.exr"),
        _remove_a_plate, _check, LicenceError, ["'plates/sh010.1003.exr'", "was registered but does not exist"],
        id="registered-file-gone",
    ),
    pytest.param(
        HEADER + source("plates/*.exr"),
        _add_a_plate, _check, LicenceError, ["'plates/sh010.1004.exr'", "was not registered"],
        id="unregistered-file-in-registered-glob",
    ),
    pytest.param(
        HEADER.replace("dataset/1", "dataset/2") + source("plates/*.exr"),
        None, load_manifest, ManifestError,
        ["dataset.toml", "unknown schema 'plateforge.dataset/2'", *KNOWN_SCHEMAS],
        id="unknown-schema",
    ),
    pytest.param(
        'name = "x"\n' + source("plates/*.exr"),
        None, load_manifest, ManifestError, ["dataset.toml", "no 'schema' key", *KNOWN_SCHEMAS],
        id="no-schema",
    ),
    pytest.param(
        HEADER + source("plates/*.exr", uses='["train", "resell"]'),
        None, load_manifest, ManifestError,
        ["dataset.toml", "'plates/*.exr'", "unknown permitted use(s) ['resell']", "train, infer, evaluate, distribute"],
        id="unknown-permitted-use",
    ),
    pytest.param(
        HEADER + source("plates/*.exr", terms='license = "MIT"\nrights_holder = "ACME"\n'),
        None, load_manifest, ManifestError, ["'plates/*.exr'", "unknown key(s) ['license']", "licence"],
        id="unknown-key-license-spelling",
    ),
    pytest.param(
        HEADER + source("plates/*.exr", extra='role = "reference"\n'),
        None, load_manifest, ManifestError, ["'plates/*.exr'", "unknown role 'reference'", "input, target"],
        id="unknown-role",
    ),
    pytest.param(
        HEADER + source("mask.1001.exr", extra='sha256 = "1234"\n'),
        None, load_manifest, ManifestError, ["'mask.1001.exr'", "not a SHA-256"],
        id="bad-hash",
    ),
    pytest.param(
        HEADER + source("plates/*.exr", extra='sha256 = "' + "a" * 64 + '"\n'),
        None, load_manifest, ManifestError, ["'plates/*.exr'", "a glob's 'sha256' should be a table"],
        id="glob-with-one-hash",
    ),
    pytest.param(
        HEADER + source("plates/*.exr") + source("plates/sh010.1002.exr"),
        None, _resolve, ManifestError, ["'plates/sh010.1002.exr'", "listed by two sources"],
        id="file-in-two-sources",
    ),
    pytest.param(
        HEADER + source("plates/*.exr") + source("plates/sh010.1002.exr"),
        None, _check, ManifestError, ["'plates/sh010.1002.exr'", "listed by two sources"],
        id="file-in-two-sources-in-training",
    ),
    pytest.param(
        HEADER, None, load_manifest, ManifestError, ["dataset.toml", "lists no sources"], id="no-sources"
    ),
    pytest.param(
        'schema = "plateforge.dataset/1"\n' + source("plates/*.exr"),
        None, load_manifest, ManifestError, ["dataset.toml", "has no 'name'"],
        id="no-name",
    ),
    pytest.param(
        HEADER + "[[sources]\npath = 1\n", None, load_manifest, ManifestError, ["dataset.toml", "not valid TOML"],
        id="not-toml",
    ),
    pytest.param(
        HEADER + source("plates/*.exr", uses='"train"'),
        None, load_manifest, ManifestError, ["'plates/*.exr'", "should be a list"],
        id="uses-not-a-list",
    ),
    pytest.param(
        HEADER + source("plates/*.exr", extra='contributors = "Ana Ruiz"\n'),
        None, load_manifest, ManifestError, ["'plates/*.exr'", "'contributors' should be a list"],
        id="contributors-not-a-list",
    ),
    pytest.param(
        HEADER + source("plates/*.exr", extra='contributors = [{name = "Ana Ruiz"}]\n'),
        None, load_manifest, ManifestError, ["contributors[0]", "has no 'role'"],
        id="contributor-without-role",
    ),
    pytest.param(
        HEADER + source("plates/*.exr", extra='contributors = [{name = " ", role = "grade"}]\n'),
        None, load_manifest, ManifestError, ["contributors[0]", "name should be non-empty text"],
        id="contributor-blank-name",
    ),
    pytest.param(
        HEADER + source("plates/*.exr", extra='contributors = [{name = "A", role = "grade", fee = 3}]\n'),
        None, load_manifest, ManifestError, ["contributors[0]", "unknown key(s) ['fee']", "name, role"],
        id="contributor-unknown-key",
    ),
    pytest.param(
        HEADER + source("plates/*.exr", extra='contributors = ["Ana Ruiz"]\n'),
        None, load_manifest, ManifestError, ["contributors[0]", "should be a table"],
        id="contributor-not-a-table",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "prepare", "action", "error", "expected"), INVALID)
def test_invalid_manifests_are_refused_naming_the_file(
    shot: Path,
    text: str,
    prepare: Prepare,
    action: Callable[[Path], object],
    error: type[PlateforgeError],
    expected: list[str],
) -> None:
    path = write_manifest(shot, text)
    if prepare is not None:
        prepare(shot, path)
    with pytest.raises(error) as caught:
        action(path)
    message = str(caught.value)
    assert type(caught.value) is error
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert "\n" not in message


def test_every_offending_file_is_named_in_one_error(shot: Path) -> None:
    text = (
        HEADER
        + source("plates/sh010.1001.exr", terms="")  # no licence, no rights holder
        + source("plates/sh010.1002.exr")  # fine
        + source("plates/sh010.1003.exr", uses='["infer"]')
        + source("fixes/v2/sh010_fix_1001.exr")
        + source("gone.exr")
    )
    path = write_manifest(shot, text)
    before = path.read_text()
    (shot / "fixes" / "v2" / "sh010_fix_1001.exr").write_bytes(b"changed")  # unregistered: still accepted
    with pytest.raises(LicenceError) as caught:
        check_for_training(load_manifest(path))
    message = str(caught.value)
    assert "3 problem(s)" in message and "'sh010-cleanup'" in message and str(path) in message
    assert "'plates/sh010.1001.exr' has no licence and has no rights holder;" in message
    assert "'plates/sh010.1003.exr' may not be used for training (permitted uses: infer)" in message
    assert "'gone.exr' does not exist" in message
    assert "sh010.1002" not in message and "sh010_fix_1001" not in message
    assert path.read_text() == before
    assert LicenceError.grpc_code == "PERMISSION_DENIED"


def test_a_long_list_of_problems_is_cut_short(shot: Path) -> None:
    for number in range(60):
        (shot / "plates" / f"extra.{number:04d}.exr").write_bytes(b"x")
    path = write_manifest(shot, HEADER + source("plates/extra.*.exr", uses='["infer"]'))
    with pytest.raises(LicenceError) as caught:
        check_for_training(load_manifest(path))
    assert "60 problem(s)" in str(caught.value) and "and 10 more" in str(caught.value)


# -- pairs ----------------------------------------------------------------------------------------


def _files(shot: Path, *sources: str) -> list[Any]:
    return load_manifest(write_manifest(shot, HEADER + "".join(sources))).resolve()


def test_pairs_group_input_target_and_optional_mask_by_frame(shot: Path) -> None:
    (shot / "plates" / "sh010.1002.exr").unlink()
    files = _files(
        shot,
        source("plates/*.exr", extra='role = "input"\n'),
        source("fixes/v2/*.exr", extra='role = "target"\n'),
        source("mask.1001.exr", extra='role = "mask"\n'),
    )
    found = pairs(files, optional=("mask",))
    assert [p.frame for p in found] == [1001, 1003]
    assert {r: f.name for r, f in found[0].files.items()} == {
        "input": "plates/sh010.1001.exr",
        "target": "fixes/v2/sh010_fix_1001.exr",
        "mask": "mask.1001.exr",
    }
    assert set(found[1].files) == {"input", "target"}
    assert [p.frame for p in pairs(files, roles=("input",))] == [1001, 1003]


def test_pair_problems_name_the_file(shot: Path) -> None:
    files = _files(
        shot, source("plates/*.exr", extra='role = "input"\n'), source("fixes/v2/*.exr", extra='role = "target"\n')
    )
    with pytest.raises(ManifestError, match=r"'plates/sh010.1002.exr' \(frame 1002\) has no target"):
        pairs(files)
    (shot / "still.exr").write_bytes(b"x")
    files = _files(shot, source("still.exr", extra='role = "input"\n'))
    with pytest.raises(ManifestError, match=r"'still\.exr' .* no frame number"):
        pairs(files)
    files = _files(shot, source("plates/sh010.100[12].exr", extra='role = "input"\n'))
    files[1] = files[1].__class__(**{**files[1].__dict__, "frame": 1001})
    with pytest.raises(ManifestError, match="are both the input of frame 1001"):
        pairs(files, roles=("input",))
    with pytest.raises(ManifestError, match="unknown role"):
        pairs(files, roles=("before",))


@pytest.mark.parametrize(
    ("name", "frame"),
    [
        pytest.param("sh010.1001.exr", 1001, id="dot"),
        pytest.param("sh010_fix_0042.exr", 42, id="underscore"),
        pytest.param("plate-7.tif", 7, id="dash"),
        pytest.param("sh010.exr", None, id="shot-number-is-not-a-frame"),
        pytest.param("still.exr", None, id="none"),
        pytest.param("a.1001", None, id="no-extension"),
    ],
)
def test_frame_number(name: str, frame: int | None) -> None:
    assert frame_number(name) == frame


# -- the TOML writer ------------------------------------------------------------------------------

AWKWARD = [
    pytest.param("plain", id="plain"),
    pytest.param('quote " and \\ backslash', id="quote-backslash"),
    pytest.param("tab\tnewline\ncr\rff\fbs\b", id="escapes"),
    pytest.param("ctrl \x01 \x1f del \x7f", id="control"),
    pytest.param("accents é ñ, kanji 日本, emoji 🎬", id="unicode"),
    pytest.param("# not a comment ] [ = '", id="toml-syntax"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("text", AWKWARD)
def test_toml_round_trips_awkward_text(tmp_path: Path, text: str) -> None:
    manifest = Manifest(
        path=tmp_path / "dataset.toml",
        name=text or "x",
        description=text,
        sources=(
            Source(path=f"{text}*.exr", licence=text, rights_holder=text, sha256={f"{text}.exr": "f" * 64}),
            Source(path="one file.exr", permitted_uses=("train", "distribute"), role="plate", sha256={}),
        ),
        header_comments=("# made by a test",),
    )
    written = to_toml(manifest)
    assert tomllib.loads(written).get("description", "") == text
    (tmp_path / "dataset.toml").write_text(written, encoding="utf-8")
    assert load_manifest(tmp_path / "dataset.toml") == manifest


def test_contributors_are_read_carried_to_each_file_and_round_trip(shot: Path) -> None:
    people = (
        'contributors = [{name = "Ana Ruiz", role = "keyframe matte"}, {name = "studio:4411", role = "paint fix"}]\n'
    )
    path = write_manifest(shot, HEADER + source("fixes/**/*.exr", extra=people) + source("mask.1001.exr"))
    manifest = load_manifest(path)
    expected = (Contributor("Ana Ruiz", "keyframe matte"), Contributor("studio:4411", "paint fix"))
    assert manifest.sources[0].contributors == expected
    assert manifest.sources[1].contributors == ()
    files = {f.name: f.contributors for f in manifest.resolve()}
    assert files == {
        "fixes/v2/sh010_fix_1001.exr": expected,
        "fixes/v2/sh010_fix_1003.exr": expected,
        "mask.1001.exr": (),
    }
    registered = register(path)  # rewrites the file: the contributors survive
    assert registered.sources[0].contributors == expected
    awkward = Manifest(
        path=path,
        name="x",
        sources=(Source(path="a.exr", contributors=(Contributor('Zoë "Z" Ōta', "roto, paint \\ fix"),)),),
    )
    path.write_text(to_toml(awkward), encoding="utf-8")
    assert load_manifest(path) == awkward
