"""Input -> target keyframe pairs ("pairs" mode, CopyCat-style): how their training examples are
made (:mod:`.examples`). Relight and look train on them; their learned tool is
:data:`plateforge_server.tools.relight.learned.PAIRS`."""
