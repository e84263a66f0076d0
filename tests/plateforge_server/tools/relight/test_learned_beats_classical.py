"""The learned relight earns its place and does not flicker for it (issue 16.4, fast CI form).

On a small fixed seeded relit shot (a key light added, a practical switched on; seed 7, neither a
tune nor a report seed), a short training with the tool's defaults (what ``plateforge train --tool
relight --steps N`` gives) must beat the fitted affine (relight-classical) in scene-linear PSNR on
the frames it never saw, by :data:`PSNR_MARGIN`, *and* its warp error against the true sequence
(the bench's temporal-stability figure,
:meth:`plateforge_server.tools.relight.evaluation.RelightScene.warp_error`) must not be above the
affine's, which moves with the picture exactly.

Deterministic: one CPU thread, a seeded shot and run. Measured (CPU, 1 thread, 160x96x12, K = 4,
100 steps), learned vs affine:

* today's defaults (equivariant net, dead zone 0.06): PSNR 11.69 vs 9.37 dB, warp error 0.000796 vs
  0.000519: the PSNR bar holds, the warp-error bar does not, so the test is an expected failure
  (strict: the day it passes, the marker must go);
* the defaults before (classic net, shift-consistency term 30; what main trained): PSNR 11.33 vs
  9.37 dB, warp error 0.000943 vs 0.000519 (1.8x): it fails the test too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plateforge.shots.relit import make_relit_shot
from plateforge_server.evaluation.runs import bench_config
from plateforge_server.tools.learned import tool_module_for
from plateforge_server.tools.relight.evaluation import RelightScene, key_indices
from plateforge_server.training import train
from tests.plateforge_server.training.helpers import one_thread  # noqa: F401  (autouse: one torch thread, figures reproducible)

SEED = 7
WIDTH, HEIGHT, FRAMES, KEYS = 160, 96, 12, 4
STEPS = 100
#: PSNR bar over the affine (dB): about half the gain measured with today's defaults (+2.3 dB).
PSNR_MARGIN = 1.0
#: Warp error bar: at most this times the affine's (issue 16: not worse than the classical tool).
WARP_RATIO = 1.0


@pytest.mark.xfail(
    strict=True,
    reason="open (issue 16): at 100 steps on this shot the learned relight's warp error is 1.5x the affine's",
)
def test_a_short_relight_training_beats_the_affine_and_flickers_no_more(tmp_path: Path) -> None:
    shot = make_relit_shot(width=WIDTH, height=HEIGHT, frames=FRAMES, seed=SEED)
    scene = RelightScene(shot, "relit")
    keys = key_indices(FRAMES, KEYS)
    manifest = scene.write_keys(tmp_path / "keys", keys)
    config = bench_config("relight", steps=STEPS, device="cpu")
    result = train(config, manifest_path=manifest, out_dir=tmp_path / "run", resume=False)
    state = tool_module_for(result.model_dir).load(device="cpu")
    learned = scene.learned(state.net, keys, ("R", "G", "B"), device="cpu")
    classical = scene.classical(keys)
    report = {"learned": learned, "classical": classical, "selected": state.card.metrics.get("selected_step")}
    assert learned["psnr"] >= classical["psnr"] + PSNR_MARGIN, report
    assert learned["warp_error"] <= WARP_RATIO * classical["warp_error"], report
