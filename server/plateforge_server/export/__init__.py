"""Exporting a trained model to run without the server: ONNX (onnxruntime, Flame's Inference
node) and TorchScript (Nuke's CatFileCreator), each carrying its model card.

:mod:`.functions` is the per-frame function as tensor ops, :mod:`.onnx_writer` and
:mod:`.torchscript_writer` write it, :mod:`.flame` and :mod:`.nuke` add what each host node
needs, :mod:`.licence` refuses sources that do not permit it, :mod:`.build` puts one export
together (``export_model``) and :mod:`.service` serves it as plateforge.v1.Export. Nothing is
imported here, so the server starts without torch or onnx loaded until an export is asked for.
"""

__all__: list[str] = []
