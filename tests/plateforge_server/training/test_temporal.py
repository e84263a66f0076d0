"""The shift-consistency term (plateforge_server.training.temporal): moves are exact, the fitted
affine a relight net starts as scores 0, a net that does not move with the picture does not, and
a run with the term trains (the engine adds it) and stays deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from plateforge_server.nets.unet import UNetConfig, encode
from plateforge_server.tools.relight.affine_start import AffineUNet
from plateforge_server.training.temporal import shift_consistency, translate
from tests.plateforge_server.training.helpers import one_thread  # noqa: F401  (autouse: one torch thread, figures reproducible)


@pytest.mark.parametrize(
    ("dx", "dy"),
    [
        pytest.param(1.0, 0.0, id="one-right"),
        pytest.param(0.0, 2.0, id="two-down"),
        pytest.param(-3.0, -1.0, id="up-left"),
    ],
)
def test_a_whole_pixel_move_is_exact(dx: float, dy: float) -> None:
    x = encode(torch.rand(1, 4, 24, 32, generator=torch.Generator().manual_seed(0)) * 3)
    moved = translate(x, torch.tensor([[dx, dy]]))
    sx, sy = int(dx), int(dy)
    inside = moved[0, :, max(sy, 0) : 24 + min(sy, 0), max(sx, 0) : 32 + min(sx, 0)]
    source = x[0, :, max(-sy, 0) : 24 + min(-sy, 0), max(-sx, 0) : 32 + min(-sx, 0)]
    torch.testing.assert_close(inside, source, atol=1e-5, rtol=1e-5)


def test_a_half_pixel_move_interpolates_in_linear_light() -> None:
    linear = torch.tensor([[[[0.0, 8.0, 0.0, 8.0]]]])
    moved = translate(encode(linear), torch.tensor([[0.5, 0.0]]))
    # Half-way between 0 and 8 in scene-linear is 4, not the decoded mean of the encoded values (2).
    assert float(torch.expm1(moved[0, 0, 0, 2])) == pytest.approx(4.0, rel=1e-5)


def _affine_net() -> AffineUNet:
    config = UNetConfig.preset("small", in_channels=6, out_channels=3, residual_from=(0, 1, 2))
    return AffineUNet(config, affine=np.array([[1.3, 0.1, 0.0, 0.02], [0.0, 0.8, 0.1, 0.0], [0.0, 0.0, 1.1, 0.01]]))


def test_the_fitted_affine_moves_with_the_picture() -> None:
    torch.manual_seed(0)
    net = _affine_net().eval()
    x = encode(torch.rand(2, 3, 40, 40) * 4)
    with torch.no_grad():
        assert float(shift_consistency(net, x, net(x), seed=0, step=1)) < 1e-5


def test_a_stride_two_net_does_not_and_the_term_has_a_gradient() -> None:
    torch.manual_seed(0)
    net = _affine_net()
    torch.nn.init.normal_(net.head.weight, std=0.2)
    x = encode(torch.rand(2, 3, 40, 40) * 4)
    term = shift_consistency(net, x, net(x), seed=0, step=1)
    assert float(term.detach()) > 1e-3
    term.backward()  # type: ignore[no-untyped-call]
    assert net.head.weight.grad is not None and float(net.head.weight.grad.abs().sum()) > 0


def test_only_pixels_moved_in_from_inside_the_crop_count() -> None:
    from plateforge_server.training.temporal import moved_inside

    like = torch.zeros(1)
    inside = moved_inside(torch.tensor([[2.0, 0.0], [0.0, -1.5]]), [2, 3, 10, 12], like)
    assert inside.shape == (2, 1, 10, 12)
    # Moved 2 right: the 2 columns on the left came from outside.
    assert not inside[0, 0, :, :2].any() and bool(inside[0, 0, :, 2:].all())
    # Moved 1.5 up: the last 2 rows read outside (one of them half).
    assert not inside[1, 0, -2:, :].any() and bool(inside[1, 0, :-2, :].all())


#: Relight, 64x48, 6 frames, tune seed 101, 2 of 3 keys trained on, 25 steps, batch 2 of 32 px crops.
#: Measured (CPU, 1 thread), the last step's net on a plate moved 4 ways: 0.000300 without the
#: term, 0.000128 with temporal_weight 30. The bar is at 0.7 of the run without it.
TERM_RATIO = 0.7


def test_a_relight_run_with_the_term_moves_with_the_picture_more_than_one_without(tmp_path: Path) -> None:
    from plateforge.shots.relit import make_relit_shot
    from plateforge_server.evaluation.runs import bench_config
    from plateforge_server.tools.learned import tool_module_for
    from plateforge_server.tools.relight.evaluation import RelightScene, key_indices
    from plateforge_server.training import checkpoints, train

    shot = make_relit_shot(width=64, height=48, frames=6, seed=101)
    scene = RelightScene(shot, "relit")
    manifest = scene.write_keys(tmp_path / "keys", key_indices(6, 3))
    plate = encode(torch.from_numpy(shot.plates[1].stack(("R", "G", "B"))).permute(2, 0, 1)[None].float())
    scores = {}
    for weight in (0.0, 30.0):
        # The classic layout, no dead zone: the term's own effect on the stride-2 net it was made for.
        params = {"temporal_weight": weight, "batch": 2, "crop": 32, "validation_every": 25}
        params |= {"equivariant": False, "dead_zone": 0.0}
        config = bench_config("relight", steps=25, device="cpu", params=params)
        result = train(config, manifest_path=manifest, out_dir=tmp_path / f"run{weight}")
        net = tool_module_for(result.model_dir).load(device="cpu").net
        # The last step's weights (model selection may publish step 0, the affine, after so short a run).
        net.load_state_dict(checkpoints.load_latest(tmp_path / f"run{weight}" / "checkpoints", device="cpu").model)
        net.eval()
        torch.manual_seed(0)
        with torch.no_grad():
            plates = plate.repeat(4, 1, 1, 1)
            scores[weight] = float(shift_consistency(net, plates, net(plates), seed=0, step=1))
    assert scores[30.0] < TERM_RATIO * scores[0.0], scores
