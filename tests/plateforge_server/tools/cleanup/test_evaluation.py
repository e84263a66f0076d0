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


def test_headroom_puts_the_error_where_it_is() -> None:
    scene = CleanupScene(make_shot(width=160, height=96, frames=5))
    classical = scene.classical()
    room = scene.headroom(classical)
    figures = scene.score(classical)
    # The inpainted pixels hold nearly all of the error; with them exact, what is left is the shown pixels'.
    assert room["error_share_unseen"] > 0.9
    assert room["psnr_if_unseen_exact"] > figures["psnr"] + 10
    # The truth itself has no error to place; the plate with the rig has it on shown pixels too.
    truth = [f.truth for f in scene.frames]
    assert scene.headroom(truth) == {"error_share_unseen": 0.0, "psnr_if_unseen_exact": math.inf}
    assert scene.headroom(scene.uncleaned())["error_share_unseen"] < 0.9
