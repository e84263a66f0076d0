"""A dataset's roles against the mode a tool name resolves to: refused before a job exists, with the
roles wanted and found, and the tool the user probably meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from plateforge.errors import UsageError
from plateforge.manifest_format import load_manifest
from plateforge_server.jobs._manager import build_config
from plateforge_server.training.roles import check_roles_fit
from tests.plateforge_server.training.helpers import write_pairs, write_shot_dataset


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("datasets")
    return {"pairs": write_pairs(root / "pairs", frames=2, size=16), "shot": write_shot_dataset(root / "shot")}


@pytest.mark.parametrize(
    ("dataset", "tool"),
    [
        pytest.param("pairs", "look", id="pairs-look"),
        pytest.param("pairs", "degrain", id="pairs-own-tool"),
        pytest.param("shot", "cleanup", id="shot-cleanup"),
    ],
)
def test_fitting_roles_pass(datasets: dict[str, Path], dataset: str, tool: str) -> None:
    check_roles_fit(build_config(tool=tool), load_manifest(datasets[dataset]))


@pytest.mark.parametrize(
    ("dataset", "tool", "said"),
    [
        pytest.param(
            "shot",
            "clean",
            ["'clean' is not a built-in tool, so it trains input -> target pairs", "missing 'input', 'target'",
             "Did you mean cleanup?"],
            id="typo-cleanup",
        ),
        pytest.param("shot", "mate", ["Did you mean matte?"], id="typo-matte"),
        pytest.param(
            "shot",
            "matte",
            ["tool 'matte' trains mode 'matte'", "'clean_plate', 'matte', 'plate'", "missing 'clean_plate', 'matte'",
             "Its roles fit mode 'cleanup': --tool cleanup"],
            id="matte-without-mattes",
        ),
        pytest.param(
            "pairs",
            "cleanup",
            ["needs files with the roles 'plate' (and optionally 'mask', 'target')",
             "the dataset has 'input', 'target'", "Its roles fit mode 'pairs': --tool look"],
            id="cleanup-on-pairs",
        ),
    ],
)  # fmt: skip
def test_roles_that_cannot_feed_the_mode_are_refused(
    datasets: dict[str, Path], dataset: str, tool: str, said: list[str]
) -> None:
    with pytest.raises(UsageError) as caught:
        check_roles_fit(build_config(tool=tool), load_manifest(datasets[dataset]))
    for text in said:
        assert text in str(caught.value)
