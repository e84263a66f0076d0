"""Generative fill from a local, licensed diffusers base model, and LoRA fine-tuning on it.

* :mod:`.folder` — a base model folder's licence record, and its proof before anything loads;
* :mod:`.inpaint` — the served ``generative-fill`` model (``diffusers-inpaint`` cards);
* :mod:`.lora` — LoRA fine-tuning with peft on a project's licensed stills.

Needs the ``[generative]`` extra (diffusers, transformers, peft); importing this package does not.
"""

from plateforge_server.generative.folder import LICENCE_FILE, VerifiedPipeline, verify_pipeline_folder, write_licence

__all__ = ["LICENCE_FILE", "VerifiedPipeline", "verify_pipeline_folder", "write_licence"]
