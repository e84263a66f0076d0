from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ParamValue(_message.Message):
    __slots__ = ("number", "boolean", "text")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    BOOLEAN_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    number: float
    boolean: bool
    text: str
    def __init__(self, number: _Optional[float] = ..., boolean: _Optional[bool] = ..., text: _Optional[str] = ...) -> None: ...

class ParameterSpec(_message.Message):
    __slots__ = ("name", "kind", "default_value", "label", "description", "has_minimum", "minimum", "has_maximum", "maximum", "choices")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ParameterSpec.Kind]
        KIND_FLOAT: _ClassVar[ParameterSpec.Kind]
        KIND_INT: _ClassVar[ParameterSpec.Kind]
        KIND_BOOL: _ClassVar[ParameterSpec.Kind]
        KIND_STRING: _ClassVar[ParameterSpec.Kind]
        KIND_CHOICE: _ClassVar[ParameterSpec.Kind]
    KIND_UNSPECIFIED: ParameterSpec.Kind
    KIND_FLOAT: ParameterSpec.Kind
    KIND_INT: ParameterSpec.Kind
    KIND_BOOL: ParameterSpec.Kind
    KIND_STRING: ParameterSpec.Kind
    KIND_CHOICE: ParameterSpec.Kind
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HAS_MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    HAS_MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: ParameterSpec.Kind
    default_value: ParamValue
    label: str
    description: str
    has_minimum: bool
    minimum: float
    has_maximum: bool
    maximum: float
    choices: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ParameterSpec.Kind, str]] = ..., default_value: _Optional[_Union[ParamValue, _Mapping]] = ..., label: _Optional[str] = ..., description: _Optional[str] = ..., has_minimum: _Optional[bool] = ..., minimum: _Optional[float] = ..., has_maximum: _Optional[bool] = ..., maximum: _Optional[float] = ..., choices: _Optional[_Iterable[str]] = ...) -> None: ...

class InputSpec(_message.Message):
    __slots__ = ("name", "description", "required", "channels", "temporal_radius")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TEMPORAL_RADIUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    required: bool
    channels: _containers.RepeatedScalarFieldContainer[str]
    temporal_radius: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., required: _Optional[bool] = ..., channels: _Optional[_Iterable[str]] = ..., temporal_radius: _Optional[int] = ...) -> None: ...

class OutputSpec(_message.Message):
    __slots__ = ("name", "description", "channels")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "tool", "description", "inputs", "outputs", "parameters", "padding", "provenance", "attributes", "model_hash")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PADDING_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    MODEL_HASH_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    tool: str
    description: str
    inputs: _containers.RepeatedCompositeFieldContainer[InputSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[OutputSpec]
    parameters: _containers.RepeatedCompositeFieldContainer[ParameterSpec]
    padding: int
    provenance: str
    attributes: _containers.ScalarMap[str, str]
    model_hash: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., tool: _Optional[str] = ..., description: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[InputSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[OutputSpec, _Mapping]]] = ..., parameters: _Optional[_Iterable[_Union[ParameterSpec, _Mapping]]] = ..., padding: _Optional[int] = ..., provenance: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., model_hash: _Optional[str] = ...) -> None: ...
