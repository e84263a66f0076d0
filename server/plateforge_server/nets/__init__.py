"""The nets plateforge trains and serves, one readable file per net, each with a ``@dataclass`` config.

A net's config is all it takes to rebuild it: checkpoints store ``config.to_dict()`` beside the
weights, so a model loads without the training script. Nets work on *encoded* scene-linear values
(see :func:`plateforge_server.nets.unet.encode`), never on raw plate values.
"""
