"""The tools the server offers.

A served tool is one module with the contract in :mod:`.base`; the built-in ones are listed in
``BUILTIN`` and the registry imports them by name. A tool that learns is one package
(``cleanup/``, ``matte/``, ``relight/``: classical method, learned model, training examples,
evaluation) whose learned part implements :class:`.interface.LearnedTool`, listed by training mode
in ``LEARNED``. Trained models are served by :mod:`.learned`, which asks the tool that made them.
"""

BUILTIN = (
    "plateforge_server.tools.passthrough",
    "plateforge_server.tools.cleanup.classical",
    "plateforge_server.tools.relight.classical",
    "plateforge_server.tools.matte.classical",
)

#: The learned tools by training mode (``TrainConfig.mode``): ``module:attribute`` of each one's
#: :class:`~plateforge_server.tools.interface.LearnedTool` (or ``OwnLoop``), imported on first use.
#: Relight and look share "pairs"; "inpaint" is the plain self-supervised net that serves as a cleanup model.
LEARNED = {
    "cleanup": "plateforge_server.tools.cleanup.learned:CLEANUP",
    "inpaint": "plateforge_server.tools.inpaint.learned:INPAINT",
    "matte": "plateforge_server.tools.matte.learned:MATTE",
    "pairs": "plateforge_server.tools.pairs.learned:PAIRS",
    "lora": "plateforge_server.generative.lora:LORA",
}
