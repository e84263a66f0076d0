"""The inpaint net's learned tool (tools/inpaint/learned.py): the "inpaint" mode's tool, whose
trained models the server serves through it (a plain net that declares a mask input), not through
the pairs tool that shares its architecture."""

from __future__ import annotations

from pathlib import Path

from plateforge_server.modelcard import verify_model
from plateforge_server.tools import LEARNED
from plateforge_server.tools.inpaint.learned import INPAINT
from plateforge_server.tools.interface import learned_tool, serving_tool
from plateforge_server.training import train
from tests.plateforge_server.training.helpers import fast, write_pairs, write_shot_dataset


def test_the_inpaint_mode_is_the_inpaint_packages_tool() -> None:
    assert LEARNED["inpaint"] == "plateforge_server.tools.inpaint.learned:INPAINT"
    assert learned_tool("inpaint") is INPAINT


def test_an_inpaint_model_is_served_by_the_inpaint_tool_and_a_pairs_model_is_not(tmp_path: Path) -> None:
    inpaint = train(
        fast(mode="inpaint", steps=2), manifest_path=write_shot_dataset(tmp_path / "shot"), out_dir=tmp_path / "a"
    )
    card = verify_model(inpaint.model_dir)
    assert card.tool == INPAINT.served_tool(fast(mode="inpaint")) == "cleanup" and card.net.arch == "unet"
    assert serving_tool(card) is INPAINT

    pairs = train(fast(mode="pairs", steps=2), manifest_path=write_pairs(tmp_path / "pairs"), out_dir=tmp_path / "b")
    pairs_card = verify_model(pairs.model_dir)
    assert pairs_card.net.arch == "unet" and not INPAINT.serves(pairs_card)
    assert serving_tool(pairs_card) is learned_tool("pairs")
