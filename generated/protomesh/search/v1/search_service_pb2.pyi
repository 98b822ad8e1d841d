import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protomesh.common.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_MODE_UNSPECIFIED: _ClassVar[SearchMode]
    SEARCH_MODE_HYBRID: _ClassVar[SearchMode]
    SEARCH_MODE_KEYWORD: _ClassVar[SearchMode]
    SEARCH_MODE_VECTOR: _ClassVar[SearchMode]

class Fusion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUSION_UNSPECIFIED: _ClassVar[Fusion]
    FUSION_SCORE: _ClassVar[Fusion]
    FUSION_RRF: _ClassVar[Fusion]
SEARCH_MODE_UNSPECIFIED: SearchMode
SEARCH_MODE_HYBRID: SearchMode
SEARCH_MODE_KEYWORD: SearchMode
SEARCH_MODE_VECTOR: SearchMode
FUSION_UNSPECIFIED: Fusion
FUSION_SCORE: Fusion
FUSION_RRF: Fusion

class SearchFilter(_message.Message):
    __slots__ = ("labels", "document_names", "min_update_time", "max_update_time")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_NAMES_FIELD_NUMBER: _ClassVar[int]
    MIN_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.ScalarMap[str, str]
    document_names: _containers.RepeatedScalarFieldContainer[str]
    min_update_time: _timestamp_pb2.Timestamp
    max_update_time: _timestamp_pb2.Timestamp
    def __init__(self, labels: _Optional[_Mapping[str, str]] = ..., document_names: _Optional[_Iterable[str]] = ..., min_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("query", "mode", "bm25_weight", "vector_weight", "rrf_k", "filter", "page_size", "page_token", "min_sequence", "fusion")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    BM25_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    VECTOR_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    RRF_K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    query: str
    mode: SearchMode
    bm25_weight: float
    vector_weight: float
    rrf_k: int
    filter: SearchFilter
    page_size: int
    page_token: str
    min_sequence: int
    fusion: Fusion
    def __init__(self, query: _Optional[str] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., bm25_weight: _Optional[float] = ..., vector_weight: _Optional[float] = ..., rrf_k: _Optional[int] = ..., filter: _Optional[_Union[SearchFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_sequence: _Optional[int] = ..., fusion: _Optional[_Union[Fusion, str]] = ...) -> None: ...

class SearchResult(_message.Message):
    __slots__ = ("document_name", "chunk_id", "ordinal", "title", "snippet", "highlights", "score", "keyword_rank", "keyword_score", "vector_rank", "vector_score", "text", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DOCUMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    ORDINAL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    HIGHLIGHTS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_RANK_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_SCORE_FIELD_NUMBER: _ClassVar[int]
    VECTOR_RANK_FIELD_NUMBER: _ClassVar[int]
    VECTOR_SCORE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    document_name: str
    chunk_id: str
    ordinal: int
    title: str
    snippet: str
    highlights: _containers.RepeatedCompositeFieldContainer[TextRange]
    score: float
    keyword_rank: int
    keyword_score: float
    vector_rank: int
    vector_score: float
    text: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, document_name: _Optional[str] = ..., chunk_id: _Optional[str] = ..., ordinal: _Optional[int] = ..., title: _Optional[str] = ..., snippet: _Optional[str] = ..., highlights: _Optional[_Iterable[_Union[TextRange, _Mapping]]] = ..., score: _Optional[float] = ..., keyword_rank: _Optional[int] = ..., keyword_score: _Optional[float] = ..., vector_rank: _Optional[int] = ..., vector_score: _Optional[float] = ..., text: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TextRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results", "next_page_token", "degraded", "degraded_reason", "applied_sequence", "mode")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    APPLIED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchResult]
    next_page_token: str
    degraded: bool
    degraded_reason: str
    applied_sequence: int
    mode: SearchMode
    def __init__(self, results: _Optional[_Iterable[_Union[SearchResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., degraded: _Optional[bool] = ..., degraded_reason: _Optional[str] = ..., applied_sequence: _Optional[int] = ..., mode: _Optional[_Union[SearchMode, str]] = ...) -> None: ...

class SearchStreamResponse(_message.Message):
    __slots__ = ("result", "summary")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    result: SearchResult
    summary: SearchSummary
    def __init__(self, result: _Optional[_Union[SearchResult, _Mapping]] = ..., summary: _Optional[_Union[SearchSummary, _Mapping]] = ...) -> None: ...

class SearchSummary(_message.Message):
    __slots__ = ("result_count", "next_page_token", "degraded", "degraded_reason", "applied_sequence", "mode")
    RESULT_COUNT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    APPLIED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    result_count: int
    next_page_token: str
    degraded: bool
    degraded_reason: str
    applied_sequence: int
    mode: SearchMode
    def __init__(self, result_count: _Optional[int] = ..., next_page_token: _Optional[str] = ..., degraded: _Optional[bool] = ..., degraded_reason: _Optional[str] = ..., applied_sequence: _Optional[int] = ..., mode: _Optional[_Union[SearchMode, str]] = ...) -> None: ...

class GetIndexStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IndexStatus(_message.Message):
    __slots__ = ("applied_sequence", "head_sequence", "lag", "document_count", "chunk_count", "pending_embedding_count", "embedder_model", "embedding_dimensions", "degraded", "degraded_reason", "last_applied_time", "chunker_version", "outdated_document_count", "rebuild_pending_document_count")
    APPLIED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    PENDING_EMBEDDING_COUNT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDER_MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_APPLIED_TIME_FIELD_NUMBER: _ClassVar[int]
    CHUNKER_VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTDATED_DOCUMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    REBUILD_PENDING_DOCUMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    applied_sequence: int
    head_sequence: int
    lag: int
    document_count: int
    chunk_count: int
    pending_embedding_count: int
    embedder_model: str
    embedding_dimensions: int
    degraded: bool
    degraded_reason: str
    last_applied_time: _timestamp_pb2.Timestamp
    chunker_version: int
    outdated_document_count: int
    rebuild_pending_document_count: int
    def __init__(self, applied_sequence: _Optional[int] = ..., head_sequence: _Optional[int] = ..., lag: _Optional[int] = ..., document_count: _Optional[int] = ..., chunk_count: _Optional[int] = ..., pending_embedding_count: _Optional[int] = ..., embedder_model: _Optional[str] = ..., embedding_dimensions: _Optional[int] = ..., degraded: _Optional[bool] = ..., degraded_reason: _Optional[str] = ..., last_applied_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., chunker_version: _Optional[int] = ..., outdated_document_count: _Optional[int] = ..., rebuild_pending_document_count: _Optional[int] = ...) -> None: ...

class ReindexTenantRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReindexTenantResponse(_message.Message):
    __slots__ = ("queued_chunk_count", "rebuild_document_count")
    QUEUED_CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    REBUILD_DOCUMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    queued_chunk_count: int
    rebuild_document_count: int
    def __init__(self, queued_chunk_count: _Optional[int] = ..., rebuild_document_count: _Optional[int] = ...) -> None: ...
