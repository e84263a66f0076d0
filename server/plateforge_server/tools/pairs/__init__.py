"""Input -> target keyframe pairs ("pairs" mode, CopyCat-style), which relight, look and a studio's
own tool names train on: how their training examples are made (:mod:`.examples`) and their learned
tool (:mod:`.learned`, :data:`.learned.PAIRS`)."""
