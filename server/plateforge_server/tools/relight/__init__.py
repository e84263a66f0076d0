"""The relight and look tools (both learn from keyframe pairs, "pairs" mode), in one package.

* :mod:`.classical`: relight-classical, a global colour transform (3x4 affine, optional 3D LUT)
  fitted on the before/after pairs;
* :mod:`.affine_start`: the pairs net that starts as that fitted transform;
* :mod:`.learned`: says where the learned relight is: the pairs tool
  (:mod:`plateforge_server.tools.pairs.learned`), which relight and look share;
* :mod:`.evaluation` and :mod:`.colour` (CIEDE2000): scoring against exact ground truth.
"""
