"""The cleanup scores split the mask into what neighbouring frames show and what none does."""

from __future__ import annotations

import math

from plateforge.shots.synthetic import make_shot
from plateforge_server.tools.cleanup.evaluation import CleanupScene


def test_unseen_pixels_hold_the_classical_error() -> None:
    scene = CleanupScene(make_shot(width=160, height=96, frames=5))
    classical = scene.score(scene.classical())
    # Aligned neighbours nearly reproduce what they show; what none shows is inpainted, far worse.
    assert classical["psnr_shown"] > classical["psnr_unseen"] + 10
    assert min(classical["psnr_shown"], classical["psnr_unseen"]) > scene.score(scene.uncleaned())["psnr_unseen"]
    assert math.isfinite(classical["psnr_shown"]) and math.isfinite(classical["psnr_unseen"])
