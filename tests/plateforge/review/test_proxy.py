"""`plateforge proxy`: real EXRs (the OpenEXR test images and frames made by a real server) to
signed PNG/JPEG/MP4 proxies, read back and validated by the C2PA SDK itself (``c2pa.Reader``)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plateforge.exr import read_exr, sha256_file, write_exr
from plateforge.frames import Box, Frame
from plateforge.provenance import record
from tests.plateforge.review.certs import Chain, make_chain

c2pa = pytest.importorskip("c2pa", reason="the review extra (c2pa-python) is not installed")
ocio = pytest.importorskip("PyOpenColorIO", reason="the review extra (opencolorio) is not installed")
Image = pytest.importorskip("PIL.Image")

COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def plateforge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    from tests.plateforge.cli.test_cli import plateforge as run

    return run(*args, env=env)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return make_chain(tmp_path_factory.mktemp("pki"))


def read(path: Path, mime: str, *, root: bytes | None, sidecar: Path | None = None) -> tuple[str, dict[str, Any]]:
    """(validation state, the SDK's whole report) as c2pa.Reader gives them."""
    context = None
    if root is not None:
        context = c2pa.Context.from_dict({"verify": {"verify_trust": True}, "trust": {"trust_anchors": root.decode()}})
    data = sidecar.read_bytes() if sidecar is not None else None
    with open(path, "rb") as stream:
        reader = c2pa.Reader(mime, stream, data, context=context)
        return str(reader.get_validation_state()), json.loads(reader.json())


def active(report: dict[str, Any]) -> dict[str, Any]:
    manifest: dict[str, Any] = report["manifests"][report["active_manifest"]]
    return manifest


def assertion(manifest: dict[str, Any], label: str) -> Any:
    found = [a["data"] for a in manifest["assertions"] if a["label"] in (label, label + ".v2")]
    assert len(found) == 1, [a["label"] for a in manifest["assertions"]]
    return found[0]


def failures(report: dict[str, Any]) -> list[str]:
    return [f["code"] for f in report.get("validation_results", {}).get("activeManifest", {}).get("failure", [])]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames made by a real server (`plateforge process --model passthrough`) and two of the
    OpenEXR project's test images, copied so sidecars can be written beside them."""
    folder = tmp_path_factory.mktemp("exrs")
    from plateforge.shots.synthetic import make_shot, write_shot

    write_shot(make_shot(frames=3, seed=100, width=64, height=40), folder / "shot")
    result = plateforge(
        "process", "--model", "passthrough", "--input", str(folder / "shot" / "plate.####.exr"),
        "--frames", "1001-1003", "--output", str(folder / "out.####.exr"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder


def test_signed_stills_read_back_trusted_with_every_assertion(made: Path, chain: Chain, testdata: Path) -> None:
    stripes = made / "stripes.exr"
    shutil.copy(testdata / "TestImages" / "stripes.exr", stripes)
    exrs = [made / "out.1001.exr", made / "out.1002.exr", stripes]
    for still, mime in (("png", "image/png"), ("jpg", "image/jpeg")):
        out = made / f"review-{still}"
        result = plateforge(
            "proxy", *map(str, exrs), "--out", str(out), "--format", still,
            "--sign-cert", str(chain.cert), "--sign-key", str(chain.key),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "wrote 3 proxy file(s), signed, 3 EXR sidecar manifest(s)" in result.stderr
        for exr in exrs:
            proxy = out / f"{exr.stem}.{still}"
            state, report = read(proxy, mime, root=chain.root)
            assert state == "Trusted", report.get("validation_status")
            manifest = active(report)
            assert manifest["signature_info"]["common_name"] == "Test Studio review signing"
            (action,) = assertion(manifest, "c2pa.actions")["actions"]
            assert action["action"] == "c2pa.created" and action["digitalSourceType"] == COMPOSITE
            lineage = assertion(manifest, "org.plateforge.lineage")
            digest = sha256_file(exr)
            assert lineage["sources"] == [{"name": exr.name, "sha256": digest}]
            (ingredient,) = manifest["ingredients"]
            assert ingredient["instance_id"] == f"sha256:{digest}" and ingredient["title"] == exr.name
            assert ingredient["metadata"]["org.plateforge.sha256"] == digest
            header = read_exr(exr).attributes
            if exr != stripes:  # made by the server: the model is named from its provenance
                assert lineage["model"]["model"] == "passthrough" == header["plateforge/model"]
                assert lineage["model"]["modelHash"] == header["plateforge/modelHash"]
            else:
                assert lineage["model"] == {}
            assert lineage["display"]["display"] == "sRGB - Display"
            assert lineage["display"]["view"] == "ACES 2.0 - SDR 100 nits (Rec.709)"
            # Without the studio's root the same signature is valid but not trusted.
            state, report = read(proxy, mime, root=None)
            assert state == "Valid" and failures(report) == ["signingCredential.untrusted"]


def test_a_proxy_changed_after_signing_fails_validation(made: Path, chain: Chain) -> None:
    out = made / "tamper"
    result = plateforge(
        "proxy", str(made / "out.1003.exr"), "--out", str(out), "--no-sidecar",
        "--sign-cert", str(chain.cert), "--sign-key", str(chain.key),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    proxy = out / "out.1003.png"
    assert read(proxy, "image/png", root=chain.root)[0] == "Trusted"
    # Repaint one pixel and save a valid PNG that keeps the manifest chunk where it was.
    data = bytearray(proxy.read_bytes())
    image = np.array(Image.open(io.BytesIO(bytes(data))))
    image[5, 7] = 255 - image[5, 7]
    repainted = io.BytesIO()
    Image.fromarray(image).save(repainted, format="PNG")
    start = data.index(b"IDAT") - 4  # keep every chunk but the pixels: the caBX manifest stays
    end = data.rindex(b"IEND") - 4
    new = bytes(repainted.getvalue())
    tampered = bytes(data[:start]) + new[new.index(b"IDAT") - 4 : new.rindex(b"IEND") - 4] + bytes(data[end:])
    proxy.write_bytes(tampered)
    assert np.array(Image.open(proxy))[5, 7].tolist() == image[5, 7].tolist()  # still a PNG, one pixel changed
    state, report = read(proxy, "image/png", root=chain.root)
    assert state == "Invalid"
    assert "assertion.dataHash.mismatch" in failures(report)


def test_the_sidecar_of_a_changed_exr_fails(made: Path, chain: Chain, testdata: Path) -> None:
    exr = made / "sidecar" / "singlepart.0001.exr"
    exr.parent.mkdir()
    shutil.copy(testdata / "Beachball" / "singlepart.0001.exr", exr)
    result = plateforge(
        "proxy", str(exr), "--out", str(made / "sidecar-out"), "--format", "jpg", "--source-type", "trained",
        "--sign-cert", str(chain.cert), "--sign-key", str(chain.key),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sidecar = Path(str(exr) + ".c2pa")
    state, report = read(exr, "image/x-exr", root=chain.root, sidecar=sidecar)
    assert state == "Trusted", report.get("validation_status")
    manifest = active(report)
    assert assertion(manifest, "c2pa.actions")["actions"][0]["digitalSourceType"] == TRAINED
    assert assertion(manifest, "org.plateforge.lineage")["sources"] == [{"name": exr.name, "sha256": sha256_file(exr)}]
    assert "assertion.dataHash.match" in [s["code"] for s in report["validation_results"]["activeManifest"]["success"]]
    # One sample of the EXR changed (a re-render, a paint fix): the sidecar no longer matches.
    frame = read_exr(exr)
    channel = next(iter(frame.channels))
    changed = {**frame.channels, channel: frame.channels[channel].copy()}
    changed[channel][10, 10] += 1
    write_exr(exr, frame.replace(channels=changed))
    state, report = read(exr, "image/x-exr", root=chain.root, sidecar=sidecar)
    assert state == "Invalid" and "assertion.dataHash.mismatch" in failures(report)
    # The proxy still names the EXR it was made from; the file no longer has that hash.
    proxy_state, proxy_report = read(made / "sidecar-out" / "singlepart.0001.jpg", "image/jpeg", root=chain.root)
    assert proxy_state == "Trusted"
    named = active(proxy_report)["ingredients"][0]["metadata"]["org.plateforge.sha256"]
    assert named != sha256_file(exr)


def test_credentials_verb_reads_back_and_tells_a_changed_file(made: Path, chain: Chain, tmp_path: Path) -> None:
    exr = tmp_path / "frame.exr"
    shutil.copy(made / "out.1002.exr", exr)
    result = plateforge(
        "proxy", str(exr), "--out", str(tmp_path / "review"), "--format", "jpg",
        "--sign-cert", str(chain.cert), "--sign-key", str(chain.key),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    roots = tmp_path / "roots.pem"
    roots.write_bytes(chain.root)
    proxy = tmp_path / "review" / "frame.jpg"
    result = plateforge("credentials", str(proxy), str(exr), "--trust", str(roots))
    assert result.returncode == 0, result.stderr
    digest = sha256_file(exr)
    assert f"{proxy}: Trusted" in result.stdout and f"{exr}: Trusted" in result.stdout
    assert "action         c2pa.created compositeWithTrainedAlgorithmicMedia" in result.stdout
    assert "model          passthrough@1" in result.stdout
    assert result.stdout.count(f"source         frame.exr sha256 {digest}") == 2
    # Another studio's root: valid signatures, not trusted -> exit 1.
    other = make_chain(tmp_path / "other")
    roots.write_bytes(other.root)
    result = plateforge("credentials", str(proxy), "--trust", str(roots))
    assert result.returncode == 1 and f"{proxy}: Valid (signingCredential.untrusted)" in result.stdout
    # The EXR changed after signing -> Invalid, exit 1.
    with open(exr, "r+b") as stream:
        stream.seek(-9, 2)
        last = stream.read(1)
        stream.seek(-9, 2)
        stream.write(bytes([last[0] ^ 1]))
    result = plateforge("credentials", str(exr))
    assert result.returncode == 1 and "Invalid" in result.stdout and "assertion.dataHash.mismatch" in result.stdout
    # A file with no credentials at all is one clear line.
    bare = tmp_path / "bare.exr"
    shutil.copy(made / "out.1001.exr", bare)
    result = plateforge("credentials", str(bare))
    assert result.returncode == 2 and f"{bare} has no C2PA sidecar" in result.stderr


def test_movie_is_signed_with_every_frame_as_an_ingredient(made: Path, chain: Chain) -> None:
    pytest.importorskip("av", reason="PyAV is not installed: no MP4 proxies")
    exrs = [made / f"out.{n}.exr" for n in (1001, 1002, 1003)]
    movie = made / "movie" / "out.mp4"
    result = plateforge(
        "proxy", *map(str, exrs), "--out", str(made / "movie"), "--format", "none", "--movie", str(movie),
        "--no-sidecar", "--sign-cert", str(chain.cert), "--sign-key", str(chain.key),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in movie.parent.iterdir()) == ["out.mp4"]
    state, report = read(movie, "video/mp4", root=chain.root)
    assert state == "Trusted", report.get("validation_status")
    manifest = active(report)
    assert [i["instance_id"] for i in manifest["ingredients"]] == [f"sha256:{sha256_file(p)}" for p in exrs]
    import av

    with av.open(str(movie)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 3 and frames[0].shape == (40, 64, 3)
    data = bytearray(movie.read_bytes())
    data[data.index(b"mdat") + 200] ^= 0xFF  # one byte of the coded pictures
    movie.write_bytes(bytes(data))
    state, report = read(movie, "video/mp4", root=chain.root)
    assert state == "Invalid" and any("mismatch" in code for code in failures(report))


def test_the_display_transform_is_opencolorio_s(made: Path, tmp_path: Path) -> None:
    """Stills hold the EXR through the config's display/view: the "Raw" view is the identity
    (clipped, 8-bit), and the default view matches OCIO's own processor to a code value."""
    exr = made / "out.1001.exr"
    rgb = read_exr(exr).stack(["R", "G", "B"])
    result = plateforge("proxy", str(exr), "--out", str(tmp_path / "raw"), "--view", "Raw")
    assert result.returncode == 0 and "unsigned" in result.stderr, result.stderr
    raw = np.array(Image.open(tmp_path / "raw" / "out.1001.png"))
    assert np.array_equal(raw, np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    result = plateforge("proxy", str(exr), "--out", str(tmp_path / "aces"))
    assert result.returncode == 0, result.stderr
    shown = np.array(Image.open(tmp_path / "aces" / "out.1001.png")).astype(int)
    config = ocio.Config.CreateFromFile("ocio://studio-config-latest")
    expected = np.ascontiguousarray(rgb, dtype=np.float32).copy()
    config.getProcessor("ACEScg", "sRGB - Display", "ACES 2.0 - SDR 100 nits (Rec.709)", ocio.TRANSFORM_DIR_FORWARD)\
        .getDefaultCPUProcessor().applyRGB(expected)  # fmt: skip
    assert np.abs(shown - np.round(np.clip(expected, 0, 1) * 255)).max() <= 1
    assert not np.array_equal(shown, raw)  # the view did something


def test_card_licences_and_contributors_are_signed(tmp_path: Path, chain: Chain) -> None:
    """With the model's folder under --models-dir, the card's licences, rights holders and
    contributors (when the card has them) go into the signed lineage."""
    torch = pytest.importorskip("torch")
    from plateforge_server.modelcard import ModelCard, NetSpec, SourceRecord, save_model

    folder = tmp_path / "models" / "sh010-cleanup" / "4"
    card = ModelCard(
        name="sh010-cleanup", version="4", tool="cleanup", net=NetSpec("conv", {"width": 4}),
        sources=(
            SourceRecord("plates/sh010.1001.exr", "a" * 64, "LicenseRef-acme-sow-17", "ACME Pictures"),
            SourceRecord("fixes/sh010_fix.1001.exr", "b" * 64, "CC-BY-4.0", "Jo Artist"),
        ),
    )  # fmt: skip
    save_model(folder, tensors={"conv.weight": torch.ones(4, 3, 3, 3)}, card=card)
    weights = json.loads((folder / "card.json").read_text())["weights_sha256"]
    pixels = np.linspace(0, 1, 6 * 4, dtype=np.float32).reshape(4, 6)
    exr = tmp_path / "sh010.1001.exr"
    attributes = record(model="sh010-cleanup", modelVersion="4", modelHash=weights, tool="cleanup")
    write_exr(
        exr, Frame({"R": pixels, "G": pixels, "B": pixels}, Box(0, 0, 5, 3), Box(0, 0, 5, 3)), attributes=attributes
    )
    result = plateforge(
        "proxy", str(exr), "--out", str(tmp_path / "out"), "--models-dir", str(tmp_path / "models"),
        "--sign-cert", str(chain.cert), "--sign-key", str(chain.key),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    state, report = read(tmp_path / "out" / "sh010.1001.png", "image/png", root=chain.root)
    lineage = assertion(active(report), "org.plateforge.lineage")
    assert state == "Trusted"
    assert lineage["licences"] == ["CC-BY-4.0", "LicenseRef-acme-sow-17"]
    assert lineage["rights_holders"] == ["ACME Pictures", "Jo Artist"]
    assert lineage["contributors"] == []  # this card predates contributors: tolerated, none claimed
    assert lineage["model"] == {"model": "sh010-cleanup", "modelVersion": "4", "modelHash": weights, "tool": "cleanup"}
    # A frame that names other weights under the same name and version is refused, not mislabelled.
    write_exr(exr, read_exr(exr), attributes=record(model="sh010-cleanup", modelVersion="4", modelHash="d" * 64))
    result = plateforge("proxy", str(exr), "--out", str(tmp_path / "out2"), "--models-dir", str(tmp_path / "models"))
    assert result.returncode == 2 and "another model" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--sign-cert", "chain.pem"], "--sign-cert and --sign-key go together", id="cert-without-key"),
        pytest.param(["--display", "Cinema"], "--display 'Cinema' is not a display", id="unknown-display"),
        pytest.param(["--view", "Nope"], "--view 'Nope' is not a view of display 'sRGB - Display'", id="unknown-view"),
        pytest.param(["--colorspace", "Nope"], "--colorspace 'Nope' is not a colour space", id="unknown-colorspace"),
        pytest.param(["--ocio", "/nonexistent.ocio"], "config '/nonexistent.ocio' cannot be loaded", id="bad-config"),
        pytest.param(["--movie", "x.mov"], "unknown suffix '.mov'", id="movie-suffix"),
    ],
)
def test_bad_options_are_one_clear_line(made: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = plateforge("proxy", str(made / "out.1001.exr"), "--out", str(tmp_path / "o"), *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o" / "out.1001.png").exists()


def test_a_key_that_is_not_the_certificate_s_leaves_no_proxy(made: Path, chain: Chain, tmp_path: Path) -> None:
    other = make_chain(tmp_path / "other")
    out = tmp_path / "out"
    result = plateforge(
        "proxy", str(made / "out.1001.exr"), "--out", str(out), "--movie", str(out / "m.mp4"), "--no-sidecar",
        "--sign-cert", str(chain.cert), "--sign-key", str(other.key),
    )  # fmt: skip
    assert result.returncode == 2 and "cannot sign" in result.stderr and "Traceback" not in result.stderr
    assert list(out.iterdir()) == []  # neither an unsigned still nor its hidden staging file


def test_host_package_imports_without_the_review_extra() -> None:
    """plateforge.review and the CLI import with OpenColorIO, c2pa, Pillow and PyAV blocked; using
    them says which extra to install."""
    code = (
        "import sys\n"
        "for name in ('PyOpenColorIO', 'c2pa', 'PIL', 'av'): sys.modules[name] = None\n"
        "import plateforge.review, plateforge.cli.proxy, plateforge.batch\n"
        "from plateforge.errors import UsageError\n"
        "try:\n"
        "    plateforge.review.ColourConversion.create(colorspace='ACEScct')\n"
        "except UsageError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "needs the Python module 'PyOpenColorIO' of the review extra (pip install 'plateforge[review]')" in (
        result.stdout
    )
