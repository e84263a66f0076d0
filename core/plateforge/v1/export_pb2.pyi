from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportModelRequest(_message.Message):
    __slots__ = ("model", "version", "format")
    class Format(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FORMAT_UNSPECIFIED: _ClassVar[ExportModelRequest.Format]
        FORMAT_ONNX: _ClassVar[ExportModelRequest.Format]
        FORMAT_TORCHSCRIPT: _ClassVar[ExportModelRequest.Format]
        FORMAT_FLAME: _ClassVar[ExportModelRequest.Format]
        FORMAT_NUKE: _ClassVar[ExportModelRequest.Format]
    FORMAT_UNSPECIFIED: ExportModelRequest.Format
    FORMAT_ONNX: ExportModelRequest.Format
    FORMAT_TORCHSCRIPT: ExportModelRequest.Format
    FORMAT_FLAME: ExportModelRequest.Format
    FORMAT_NUKE: ExportModelRequest.Format
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    format: ExportModelRequest.Format
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., format: _Optional[_Union[ExportModelRequest.Format, str]] = ...) -> None: ...

class ExportedFile(_message.Message):
    __slots__ = ("name", "data")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    data: bytes
    def __init__(self, name: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ExportModelResponse(_message.Message):
    __slots__ = ("model", "model_hash", "files")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_HASH_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    model: str
    model_hash: str
    files: _containers.RepeatedCompositeFieldContainer[ExportedFile]
    def __init__(self, model: _Optional[str] = ..., model_hash: _Optional[str] = ..., files: _Optional[_Iterable[_Union[ExportedFile, _Mapping]]] = ...) -> None: ...
