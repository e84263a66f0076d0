"""The model card an export carries, and the facts about its tensors beside it.

ONNX files hold them in ``metadata_props`` (string -> string), TorchScript exports in ``card.json``
beside the file; ``plateforge provenance`` reads both (:mod:`plateforge.exports`). The card is the
served model's card as is, ``weights_sha256`` included: the hash of the weights the export was
made from (the export's own bytes hold the same numbers in another container).
"""

from __future__ import annotations

import json

from plateforge.exports import (
    CARD_KEY,
    INPUTS_KEY,
    MIN_SIZE_KEY,
    MODEL_HASH_KEY,
    OUTPUTS_KEY,
    STRIDE_KEY,
)
from plateforge_server.export.functions import FrameFunction
from plateforge_server.modelcard import ModelCard

__all__ = ["export_metadata"]


def export_metadata(card: ModelCard, function: FrameFunction) -> dict[str, str]:
    """``metadata_props`` of an export: the card (JSON), the channel order of the input and
    output tensors, the stride the graph pads to and the smallest frame it runs exactly."""
    return {
        CARD_KEY: json.dumps(card.to_dict(), sort_keys=True),
        MODEL_HASH_KEY: card.weights_sha256 or "",
        INPUTS_KEY: json.dumps(list(function.input_channels)),
        OUTPUTS_KEY: json.dumps(list(function.output_channels)),
        STRIDE_KEY: str(function.stride),
        MIN_SIZE_KEY: str(function.min_size),
    }
