import datetime

from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RateLimitClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RATE_LIMIT_CLASS_UNSPECIFIED: _ClassVar[RateLimitClass]
    RATE_LIMIT_CLASS_READ: _ClassVar[RateLimitClass]
    RATE_LIMIT_CLASS_WRITE: _ClassVar[RateLimitClass]
    RATE_LIMIT_CLASS_SEARCH: _ClassVar[RateLimitClass]
    RATE_LIMIT_CLASS_EXPENSIVE: _ClassVar[RateLimitClass]
    RATE_LIMIT_CLASS_STREAM: _ClassVar[RateLimitClass]
    RATE_LIMIT_CLASS_ADMIN: _ClassVar[RateLimitClass]
RATE_LIMIT_CLASS_UNSPECIFIED: RateLimitClass
RATE_LIMIT_CLASS_READ: RateLimitClass
RATE_LIMIT_CLASS_WRITE: RateLimitClass
RATE_LIMIT_CLASS_SEARCH: RateLimitClass
RATE_LIMIT_CLASS_EXPENSIVE: RateLimitClass
RATE_LIMIT_CLASS_STREAM: RateLimitClass
RATE_LIMIT_CLASS_ADMIN: RateLimitClass
POLICY_FIELD_NUMBER: _ClassVar[int]
policy: _descriptor.FieldDescriptor
MCP_TOOL_FIELD_NUMBER: _ClassVar[int]
mcp_tool: _descriptor.FieldDescriptor

class MethodPolicy(_message.Message):
    __slots__ = ("scopes", "default_deadline", "rate_limit_class", "http_success_status", "stream_cursor")
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_CLASS_FIELD_NUMBER: _ClassVar[int]
    HTTP_SUCCESS_STATUS_FIELD_NUMBER: _ClassVar[int]
    STREAM_CURSOR_FIELD_NUMBER: _ClassVar[int]
    scopes: _containers.RepeatedScalarFieldContainer[str]
    default_deadline: _duration_pb2.Duration
    rate_limit_class: RateLimitClass
    http_success_status: int
    stream_cursor: StreamCursor
    def __init__(self, scopes: _Optional[_Iterable[str]] = ..., default_deadline: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., rate_limit_class: _Optional[_Union[RateLimitClass, str]] = ..., http_success_status: _Optional[int] = ..., stream_cursor: _Optional[_Union[StreamCursor, _Mapping]] = ...) -> None: ...

class StreamCursor(_message.Message):
    __slots__ = ("request_field", "response_field")
    REQUEST_FIELD_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_FIELD_NUMBER: _ClassVar[int]
    request_field: str
    response_field: str
    def __init__(self, request_field: _Optional[str] = ..., response_field: _Optional[str] = ...) -> None: ...

class McpTool(_message.Message):
    __slots__ = ("name", "title", "read_only", "idempotent", "destructive")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENT_FIELD_NUMBER: _ClassVar[int]
    DESTRUCTIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    read_only: bool
    idempotent: bool
    destructive: bool
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., read_only: _Optional[bool] = ..., idempotent: _Optional[bool] = ..., destructive: _Optional[bool] = ...) -> None: ...
