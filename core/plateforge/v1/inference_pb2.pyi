from plateforge.v1 import frame_pb2 as _frame_pb2
from plateforge.v1 import models_pb2 as _models_pb2
from plateforge.v1 import shm_pb2 as _shm_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Precision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRECISION_AUTO: _ClassVar[Precision]
    PRECISION_FP32: _ClassVar[Precision]
PRECISION_AUTO: Precision
PRECISION_FP32: Precision

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_models_pb2.ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[_models_pb2.ModelInfo, _Mapping]]] = ...) -> None: ...

class InputFrames(_message.Message):
    __slots__ = ("name", "frames")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    name: str
    frames: _containers.RepeatedCompositeFieldContainer[_frame_pb2.Frame]
    def __init__(self, name: _Optional[str] = ..., frames: _Optional[_Iterable[_Union[_frame_pb2.Frame, _Mapping]]] = ...) -> None: ...

class ProcessRequest(_message.Message):
    __slots__ = ("model", "version", "params", "inputs", "target_frame", "sanitize_non_finite", "output_region", "precision")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _models_pb2.ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_models_pb2.ParamValue, _Mapping]] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FRAME_FIELD_NUMBER: _ClassVar[int]
    SANITIZE_NON_FINITE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_REGION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    params: _containers.MessageMap[str, _models_pb2.ParamValue]
    inputs: _containers.RepeatedCompositeFieldContainer[InputFrames]
    target_frame: int
    sanitize_non_finite: bool
    output_region: _shm_pb2.SharedMemoryTarget
    precision: Precision
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., params: _Optional[_Mapping[str, _models_pb2.ParamValue]] = ..., inputs: _Optional[_Iterable[_Union[InputFrames, _Mapping]]] = ..., target_frame: _Optional[int] = ..., sanitize_non_finite: _Optional[bool] = ..., output_region: _Optional[_Union[_shm_pb2.SharedMemoryTarget, _Mapping]] = ..., precision: _Optional[_Union[Precision, str]] = ...) -> None: ...

class OutputFrame(_message.Message):
    __slots__ = ("name", "frame")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    frame: _frame_pb2.Frame
    def __init__(self, name: _Optional[str] = ..., frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ...) -> None: ...

class ProcessResponse(_message.Message):
    __slots__ = ("outputs", "provenance")
    class ProvenanceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    outputs: _containers.RepeatedCompositeFieldContainer[OutputFrame]
    provenance: _containers.ScalarMap[str, str]
    def __init__(self, outputs: _Optional[_Iterable[_Union[OutputFrame, _Mapping]]] = ..., provenance: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DataChunk(_message.Message):
    __slots__ = ("image_index", "frame_index", "channel_index", "offset", "data")
    IMAGE_INDEX_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_INDEX_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    image_index: int
    frame_index: int
    channel_index: int
    offset: int
    data: bytes
    def __init__(self, image_index: _Optional[int] = ..., frame_index: _Optional[int] = ..., channel_index: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class ProcessStreamRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ProcessRequest
    chunk: DataChunk
    def __init__(self, header: _Optional[_Union[ProcessRequest, _Mapping]] = ..., chunk: _Optional[_Union[DataChunk, _Mapping]] = ...) -> None: ...

class ProcessStreamResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ProcessResponse
    chunk: DataChunk
    def __init__(self, header: _Optional[_Union[ProcessResponse, _Mapping]] = ..., chunk: _Optional[_Union[DataChunk, _Mapping]] = ...) -> None: ...
