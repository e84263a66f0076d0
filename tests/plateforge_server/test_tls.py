"""TLS: a server with a self-signed certificate (tests/tls.py) serves clients that
trust it, and refuses plaintext ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plateforge.client import Client
from plateforge.errors import ServerUnavailableError
from plateforge.frames import Frame
from tests.conftest import TOKEN, start_server
from tests.frames_for_tests import assert_same_frame
from tests.plateforge.cli.test_cli import plateforge


def test_tls_round_trip_and_plaintext_refused(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    proc = start_server("--tls-cert", str(cert), "--tls-key", str(key))
    try:
        frame = Frame.from_array(np.random.default_rng(0).random((64, 96, 4)).astype(np.float16), frame_number=3)
        with Client(proc.address, token=TOKEN, root_certificates=cert.read_bytes(), retries=0) as client:
            for transport in ("unary", "stream"):
                result = client.process("passthrough", {"plate": frame}, transport=transport)  # type: ignore[arg-type]
                out = result.outputs["image"]
                assert_same_frame(out, frame, attributes=False)
        with (
            Client(proc.address, token=TOKEN, retries=0, timeout=5) as plaintext,
            pytest.raises(ServerUnavailableError),
        ):
            plaintext.list_models()
        env = {"PLATEFORGE_SERVER": proc.address, "PLATEFORGE_TOKEN": TOKEN, "PLATEFORGE_TLS_CA": str(cert)}
        listed = plateforge("models", env=env)
        assert listed.returncode == 0, listed.stderr
        assert "passthrough@1" in listed.stdout
    finally:
        assert proc.stop() == 0


def test_tls_needs_both_halves(certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    with pytest.raises(ServerUnavailableError, match=r"exited with code 2: .*needs both a certificate"):
        start_server("--tls-cert", str(cert), timeout=30)
