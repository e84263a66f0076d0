from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PixelType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIXEL_TYPE_UNSPECIFIED: _ClassVar[PixelType]
    PIXEL_TYPE_HALF: _ClassVar[PixelType]
    PIXEL_TYPE_FLOAT: _ClassVar[PixelType]
    PIXEL_TYPE_UINT: _ClassVar[PixelType]
PIXEL_TYPE_UNSPECIFIED: PixelType
PIXEL_TYPE_HALF: PixelType
PIXEL_TYPE_FLOAT: PixelType
PIXEL_TYPE_UINT: PixelType

class Box2i(_message.Message):
    __slots__ = ("min_x", "min_y", "max_x", "max_y")
    MIN_X_FIELD_NUMBER: _ClassVar[int]
    MIN_Y_FIELD_NUMBER: _ClassVar[int]
    MAX_X_FIELD_NUMBER: _ClassVar[int]
    MAX_Y_FIELD_NUMBER: _ClassVar[int]
    min_x: int
    min_y: int
    max_x: int
    max_y: int
    def __init__(self, min_x: _Optional[int] = ..., min_y: _Optional[int] = ..., max_x: _Optional[int] = ..., max_y: _Optional[int] = ...) -> None: ...

class Channel(_message.Message):
    __slots__ = ("name", "pixel_type", "x_sampling", "y_sampling", "data", "byte_size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PIXEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    X_SAMPLING_FIELD_NUMBER: _ClassVar[int]
    Y_SAMPLING_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    BYTE_SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    pixel_type: PixelType
    x_sampling: int
    y_sampling: int
    data: bytes
    byte_size: int
    def __init__(self, name: _Optional[str] = ..., pixel_type: _Optional[_Union[PixelType, str]] = ..., x_sampling: _Optional[int] = ..., y_sampling: _Optional[int] = ..., data: _Optional[bytes] = ..., byte_size: _Optional[int] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("data_window", "display_window", "channels", "frame_number", "colour_space", "attributes", "pixel_aspect", "shm_region", "shm_offset", "shm_secret")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATA_WINDOW_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_WINDOW_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    FRAME_NUMBER_FIELD_NUMBER: _ClassVar[int]
    COLOUR_SPACE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    PIXEL_ASPECT_FIELD_NUMBER: _ClassVar[int]
    SHM_REGION_FIELD_NUMBER: _ClassVar[int]
    SHM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    SHM_SECRET_FIELD_NUMBER: _ClassVar[int]
    data_window: Box2i
    display_window: Box2i
    channels: _containers.RepeatedCompositeFieldContainer[Channel]
    frame_number: int
    colour_space: str
    attributes: _containers.ScalarMap[str, str]
    pixel_aspect: float
    shm_region: str
    shm_offset: int
    shm_secret: bytes
    def __init__(self, data_window: _Optional[_Union[Box2i, _Mapping]] = ..., display_window: _Optional[_Union[Box2i, _Mapping]] = ..., channels: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ..., frame_number: _Optional[int] = ..., colour_space: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., pixel_aspect: _Optional[float] = ..., shm_region: _Optional[str] = ..., shm_offset: _Optional[int] = ..., shm_secret: _Optional[bytes] = ...) -> None: ...
