"""The cleanup (paint-out) tool, in one package.

* :mod:`.classical`: cleanup-classical, the served tool that needs no training (aligned
  neighbours, :mod:`.flow_fill` propagation, spatial inpaint);
* :mod:`.guide`: what the learned net reads (the plate, the classical fill, the masks);
* :mod:`.examples`: how a shot teaches itself (rig-shaped holes cut where the plate is the truth);
* :mod:`.learned`: the learned cleanup behind :class:`~plateforge_server.tools.interface.LearnedTool`
  ("cleanup" and "inpaint" training modes) that the trainer, the server and the bench call;
* :mod:`.evaluation` and :mod:`.footage`: scoring against exact ground truth (the bench).

Importing the package imports nothing heavy: the registry imports :mod:`.classical` by name.
"""
