from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterRegionRequest(_message.Message):
    __slots__ = ("name", "byte_size", "nonce", "owner_pid", "memfd")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BYTE_SIZE_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    OWNER_PID_FIELD_NUMBER: _ClassVar[int]
    MEMFD_FIELD_NUMBER: _ClassVar[int]
    name: str
    byte_size: int
    nonce: bytes
    owner_pid: int
    memfd: int
    def __init__(self, name: _Optional[str] = ..., byte_size: _Optional[int] = ..., nonce: _Optional[bytes] = ..., owner_pid: _Optional[int] = ..., memfd: _Optional[int] = ...) -> None: ...

class RegisterRegionResponse(_message.Message):
    __slots__ = ("name", "byte_size", "secret")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BYTE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    name: str
    byte_size: int
    secret: bytes
    def __init__(self, name: _Optional[str] = ..., byte_size: _Optional[int] = ..., secret: _Optional[bytes] = ...) -> None: ...

class UnregisterRegionRequest(_message.Message):
    __slots__ = ("name", "secret")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    name: str
    secret: bytes
    def __init__(self, name: _Optional[str] = ..., secret: _Optional[bytes] = ...) -> None: ...

class UnregisterRegionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SharedMemoryTarget(_message.Message):
    __slots__ = ("region", "offset", "byte_size", "secret")
    REGION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    BYTE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    region: str
    offset: int
    byte_size: int
    secret: bytes
    def __init__(self, region: _Optional[str] = ..., offset: _Optional[int] = ..., byte_size: _Optional[int] = ..., secret: _Optional[bytes] = ...) -> None: ...
