"""The matte / background-replace tool, in one package.

* :mod:`.classical`: matte-classical, the clean-plate difference key and premultiplied foreground;
* :mod:`.guide`: what the learned net reads (plate, clean plate, the classical key as a guide);
* :mod:`.examples`: training samples from a few keyframe mattes;
* :mod:`.learned`: the learned matte behind :class:`~plateforge_server.tools.interface.LearnedTool`;
* :mod:`.evaluation` and :mod:`.closed_form` (the outside baseline): scoring against exact ground truth.
"""
