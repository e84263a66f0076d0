"""Relight's learned model is the pairs tool: :data:`plateforge_server.tools.pairs.learned.PAIRS`.

Nothing here is relight's alone. A learned relight is a ``"pairs"`` run (``plateforge train --tool
relight``) like a learned look or a studio's own pairs tool; what relight adds lives beside this
module: :mod:`.affine_start` (``classical_start``: the net starts as relight-classical's fitted
3x4 affine, net ``affine-unet``) and :mod:`.evaluation` (the quality bench of relight and look),
both of which the pairs tool calls. This module stays so that a reader following the tool layout
(``classical.py``, ``learned.py``, ``evaluation.py``) lands on the answer.
"""

__all__: list[str] = []
