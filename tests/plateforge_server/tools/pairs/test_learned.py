"""The pairs tool (tools/pairs/learned.py): the "pairs" mode's learned tool, which relight, look
and a studio's own tool names share; relight's classical start is an option of it, not a tool."""

from __future__ import annotations

from plateforge_server.tools import LEARNED
from plateforge_server.tools.interface import learned_tool
from plateforge_server.tools.pairs.learned import PAIRS
from plateforge_server.tools.relight.affine_start import ARCH
from tests.plateforge_server.training.helpers import fast


def test_the_pairs_mode_is_the_pairs_packages_tool() -> None:
    assert LEARNED["pairs"] == "plateforge_server.tools.pairs.learned:PAIRS"
    assert learned_tool("pairs") is PAIRS


def test_each_pairs_tool_name_is_served_and_the_classical_start_picks_the_affine_net() -> None:
    for name in ("relight", "look", "degrain"):
        assert PAIRS.served_tool(fast(mode="pairs", tool=name)) == name
    plain, start = fast(mode="pairs", tool="relight"), fast(mode="pairs", tool="relight", classical_start=True)
    assert (PAIRS.arch(plain), PAIRS.arch(start)) == ("unet", ARCH)
    # The classical start feeds the classical R, G, B beside the plate's.
    assert PAIRS.net_config(start).in_channels == PAIRS.net_config(plain).in_channels + 3
    assert PAIRS.starts_classical(start) and not PAIRS.starts_classical(plain)
    assert ARCH in PAIRS.archs and "unet" in PAIRS.archs
