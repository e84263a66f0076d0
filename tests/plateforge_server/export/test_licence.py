"""Which cards may be exported: every source must permit "distribute"; a built-in tool never exports."""

from __future__ import annotations

import pytest

from plateforge.client import Client
from plateforge.errors import LicenceError, UsageError
from plateforge.export_client import export_model
from plateforge_server.app import ServerConfig, serving
from plateforge_server.export.licence import check_export_permitted
from plateforge_server.modelcard import ModelCard, NetSpec, SourceRecord

SHA = "a" * 64


def _card(*uses: tuple[str, ...]) -> ModelCard:
    sources = tuple(
        SourceRecord(f"plates/p.{1001 + k}.exr", SHA, "LicenseRef-acme", "ACME", permitted_uses=u)
        for k, u in enumerate(uses)
    )
    return ModelCard(name="m", version="1", tool="look", net=NetSpec("unet", {}), sources=sources)


@pytest.mark.parametrize(
    ("uses", "refused"),
    [
        pytest.param((("train", "distribute"),), None, id="permitted"),
        pytest.param((("distribute", "train"), ("train", "infer", "distribute")), None, id="all-permit"),
        pytest.param(
            (("train", "distribute"), ("train",)), r"'plates/p\.1002\.exr'.*permits train, not", id="one-lacks"
        ),
        pytest.param(((),), r"'plates/p\.1001\.exr'.*permits no recorded uses", id="older-card-records-none"),
        pytest.param(
            (("train", "infer", "evaluate"),), r"ACME\) permits train, infer, evaluate", id="infer-is-not-enough"
        ),
    ],
)
def test_export_needs_distribute_from_every_source(uses: tuple[tuple[str, ...], ...], refused: str | None) -> None:
    card = _card(*uses)
    if refused is None:
        check_export_permitted(card)
    else:
        with pytest.raises(LicenceError, match=refused):
            check_export_permitted(card)


def test_a_built_in_tool_is_not_exported() -> None:
    with (
        serving(ServerConfig(token="t", grace=1.0)) as running,
        Client(running.address, token="t", timeout=60.0) as client,
        pytest.raises(UsageError, match=r"passthrough@.* is a built-in tool; only trained models export"),
    ):
        export_model(client, name="passthrough", version="", fmt="onnx")
