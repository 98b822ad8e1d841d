import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protomesh.common.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Provenance(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROVENANCE_UNSPECIFIED: _ClassVar[Provenance]
    PROVENANCE_MEASURED: _ClassVar[Provenance]
    PROVENANCE_ESTIMATED: _ClassVar[Provenance]

class ScopeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_KIND_UNSPECIFIED: _ClassVar[ScopeKind]
    SCOPE_KIND_TENANT: _ClassVar[ScopeKind]
    SCOPE_KIND_USER: _ClassVar[ScopeKind]
    SCOPE_KIND_API_KEY: _ClassVar[ScopeKind]
    SCOPE_KIND_TASK: _ClassVar[ScopeKind]

class Period(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERIOD_UNSPECIFIED: _ClassVar[Period]
    PERIOD_DAY: _ClassVar[Period]
    PERIOD_MONTH: _ClassVar[Period]
    PERIOD_TOTAL: _ClassVar[Period]

class ReservationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVATION_STATE_UNSPECIFIED: _ClassVar[ReservationState]
    RESERVATION_STATE_ACTIVE: _ClassVar[ReservationState]
    RESERVATION_STATE_COMMITTED: _ClassVar[ReservationState]
    RESERVATION_STATE_RELEASED: _ClassVar[ReservationState]
    RESERVATION_STATE_EXPIRED: _ClassVar[ReservationState]

class GroupBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GROUP_BY_UNSPECIFIED: _ClassVar[GroupBy]
    GROUP_BY_MODEL: _ClassVar[GroupBy]
    GROUP_BY_USER: _ClassVar[GroupBy]
    GROUP_BY_API_KEY: _ClassVar[GroupBy]
    GROUP_BY_TASK: _ClassVar[GroupBy]
    GROUP_BY_DAY: _ClassVar[GroupBy]
PROVENANCE_UNSPECIFIED: Provenance
PROVENANCE_MEASURED: Provenance
PROVENANCE_ESTIMATED: Provenance
SCOPE_KIND_UNSPECIFIED: ScopeKind
SCOPE_KIND_TENANT: ScopeKind
SCOPE_KIND_USER: ScopeKind
SCOPE_KIND_API_KEY: ScopeKind
SCOPE_KIND_TASK: ScopeKind
PERIOD_UNSPECIFIED: Period
PERIOD_DAY: Period
PERIOD_MONTH: Period
PERIOD_TOTAL: Period
RESERVATION_STATE_UNSPECIFIED: ReservationState
RESERVATION_STATE_ACTIVE: ReservationState
RESERVATION_STATE_COMMITTED: ReservationState
RESERVATION_STATE_RELEASED: ReservationState
RESERVATION_STATE_EXPIRED: ReservationState
GROUP_BY_UNSPECIFIED: GroupBy
GROUP_BY_MODEL: GroupBy
GROUP_BY_USER: GroupBy
GROUP_BY_API_KEY: GroupBy
GROUP_BY_TASK: GroupBy
GROUP_BY_DAY: GroupBy

class Price(_message.Message):
    __slots__ = ("name", "model", "currency_code", "input_micros_per_mtok", "output_micros_per_mtok", "cached_input_micros_per_mtok", "cache_write_micros_per_mtok", "long_context_threshold_tokens", "long_context_input_micros_per_mtok", "long_context_output_micros_per_mtok", "effective_from", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    INPUT_MICROS_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MICROS_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_MICROS_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_MICROS_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    LONG_CONTEXT_THRESHOLD_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LONG_CONTEXT_INPUT_MICROS_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    LONG_CONTEXT_OUTPUT_MICROS_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FROM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: str
    currency_code: str
    input_micros_per_mtok: int
    output_micros_per_mtok: int
    cached_input_micros_per_mtok: int
    cache_write_micros_per_mtok: int
    long_context_threshold_tokens: int
    long_context_input_micros_per_mtok: int
    long_context_output_micros_per_mtok: int
    effective_from: _timestamp_pb2.Timestamp
    version: int
    def __init__(self, name: _Optional[str] = ..., model: _Optional[str] = ..., currency_code: _Optional[str] = ..., input_micros_per_mtok: _Optional[int] = ..., output_micros_per_mtok: _Optional[int] = ..., cached_input_micros_per_mtok: _Optional[int] = ..., cache_write_micros_per_mtok: _Optional[int] = ..., long_context_threshold_tokens: _Optional[int] = ..., long_context_input_micros_per_mtok: _Optional[int] = ..., long_context_output_micros_per_mtok: _Optional[int] = ..., effective_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class ListPricesRequest(_message.Message):
    __slots__ = ("include_history", "page_size", "page_token")
    INCLUDE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    include_history: bool
    page_size: int
    page_token: str
    def __init__(self, include_history: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPricesResponse(_message.Message):
    __slots__ = ("prices", "next_page_token")
    PRICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    prices: _containers.RepeatedCompositeFieldContainer[Price]
    next_page_token: str
    def __init__(self, prices: _Optional[_Iterable[_Union[Price, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetPriceRequest(_message.Message):
    __slots__ = ("name", "at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpsertPriceRequest(_message.Message):
    __slots__ = ("price",)
    PRICE_FIELD_NUMBER: _ClassVar[int]
    price: Price
    def __init__(self, price: _Optional[_Union[Price, _Mapping]] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("model", "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    def __init__(self, model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., cache_write_tokens: _Optional[int] = ...) -> None: ...

class Attribution(_message.Message):
    __slots__ = ("user_id", "api_key_id", "task")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    api_key_id: str
    task: str
    def __init__(self, user_id: _Optional[str] = ..., api_key_id: _Optional[str] = ..., task: _Optional[str] = ...) -> None: ...

class RecordUsageRequest(_message.Message):
    __slots__ = ("usage", "attribution", "provenance", "idempotency_key", "usage_time")
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    USAGE_TIME_FIELD_NUMBER: _ClassVar[int]
    usage: TokenUsage
    attribution: Attribution
    provenance: Provenance
    idempotency_key: str
    usage_time: _timestamp_pb2.Timestamp
    def __init__(self, usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., attribution: _Optional[_Union[Attribution, _Mapping]] = ..., provenance: _Optional[_Union[Provenance, str]] = ..., idempotency_key: _Optional[str] = ..., usage_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UsageRecord(_message.Message):
    __slots__ = ("name", "usage", "attribution", "provenance", "idempotency_key", "usage_time", "amount_micros", "currency_code", "price_version", "reservation", "over_estimate")
    NAME_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    USAGE_TIME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MICROS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    PRICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    OVER_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    usage: TokenUsage
    attribution: Attribution
    provenance: Provenance
    idempotency_key: str
    usage_time: _timestamp_pb2.Timestamp
    amount_micros: int
    currency_code: str
    price_version: int
    reservation: str
    over_estimate: bool
    def __init__(self, name: _Optional[str] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., attribution: _Optional[_Union[Attribution, _Mapping]] = ..., provenance: _Optional[_Union[Provenance, str]] = ..., idempotency_key: _Optional[str] = ..., usage_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., amount_micros: _Optional[int] = ..., currency_code: _Optional[str] = ..., price_version: _Optional[int] = ..., reservation: _Optional[str] = ..., over_estimate: _Optional[bool] = ...) -> None: ...

class ListUsageRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "start_time", "end_time")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListUsageResponse(_message.Message):
    __slots__ = ("usage_records", "next_page_token")
    USAGE_RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    usage_records: _containers.RepeatedCompositeFieldContainer[UsageRecord]
    next_page_token: str
    def __init__(self, usage_records: _Optional[_Iterable[_Union[UsageRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class EstimateCostRequest(_message.Message):
    __slots__ = ("model", "input_tokens", "max_output_tokens")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    model: str
    input_tokens: int
    max_output_tokens: int
    def __init__(self, model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., max_output_tokens: _Optional[int] = ...) -> None: ...

class EstimateCostResponse(_message.Message):
    __slots__ = ("amount_micros", "currency_code", "price_version")
    AMOUNT_MICROS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    PRICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    amount_micros: int
    currency_code: str
    price_version: int
    def __init__(self, amount_micros: _Optional[int] = ..., currency_code: _Optional[str] = ..., price_version: _Optional[int] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("name", "display_name", "scope_kind", "scope_id", "period", "hard_limit_micros", "soft_limit_micros", "alert_thresholds_percent", "spent_micros", "reserved_micros", "period_start_time", "create_time", "update_time", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPE_KIND_FIELD_NUMBER: _ClassVar[int]
    SCOPE_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    HARD_LIMIT_MICROS_FIELD_NUMBER: _ClassVar[int]
    SOFT_LIMIT_MICROS_FIELD_NUMBER: _ClassVar[int]
    ALERT_THRESHOLDS_PERCENT_FIELD_NUMBER: _ClassVar[int]
    SPENT_MICROS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_MICROS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    scope_kind: ScopeKind
    scope_id: str
    period: Period
    hard_limit_micros: int
    soft_limit_micros: int
    alert_thresholds_percent: _containers.RepeatedScalarFieldContainer[int]
    spent_micros: int
    reserved_micros: int
    period_start_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., scope_kind: _Optional[_Union[ScopeKind, str]] = ..., scope_id: _Optional[str] = ..., period: _Optional[_Union[Period, str]] = ..., hard_limit_micros: _Optional[int] = ..., soft_limit_micros: _Optional[int] = ..., alert_thresholds_percent: _Optional[_Iterable[int]] = ..., spent_micros: _Optional[int] = ..., reserved_micros: _Optional[int] = ..., period_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class CreateBudgetRequest(_message.Message):
    __slots__ = ("budget", "budget_id", "request_id")
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    budget_id: str
    request_id: str
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ..., budget_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetBudgetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListBudgetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBudgetsResponse(_message.Message):
    __slots__ = ("budgets", "next_page_token")
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    budgets: _containers.RepeatedCompositeFieldContainer[Budget]
    next_page_token: str
    def __init__(self, budgets: _Optional[_Iterable[_Union[Budget, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateBudgetRequest(_message.Message):
    __slots__ = ("budget", "update_mask")
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteBudgetRequest(_message.Message):
    __slots__ = ("name", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class DeleteBudgetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("name", "amount_micros", "attribution", "budgets", "state", "expire_time", "usage_record", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MICROS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    USAGE_RECORD_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    amount_micros: int
    attribution: Attribution
    budgets: _containers.RepeatedScalarFieldContainer[str]
    state: ReservationState
    expire_time: _timestamp_pb2.Timestamp
    usage_record: UsageRecord
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., amount_micros: _Optional[int] = ..., attribution: _Optional[_Union[Attribution, _Mapping]] = ..., budgets: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[ReservationState, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., usage_record: _Optional[_Union[UsageRecord, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("amount_micros", "estimate", "attribution", "ttl", "request_id")
    AMOUNT_MICROS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    amount_micros: int
    estimate: EstimateCostRequest
    attribution: Attribution
    ttl: _duration_pb2.Duration
    request_id: str
    def __init__(self, amount_micros: _Optional[int] = ..., estimate: _Optional[_Union[EstimateCostRequest, _Mapping]] = ..., attribution: _Optional[_Union[Attribution, _Mapping]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CommitReservationRequest(_message.Message):
    __slots__ = ("name", "usage", "provenance")
    NAME_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    usage: TokenUsage
    provenance: Provenance
    def __init__(self, name: _Optional[str] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., provenance: _Optional[_Union[Provenance, str]] = ...) -> None: ...

class ReleaseReservationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ChargeRequest(_message.Message):
    __slots__ = ("usage", "attribution", "provenance", "request_id")
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    usage: TokenUsage
    attribution: Attribution
    provenance: Provenance
    request_id: str
    def __init__(self, usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., attribution: _Optional[_Union[Attribution, _Mapping]] = ..., provenance: _Optional[_Union[Provenance, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ChargeResponse(_message.Message):
    __slots__ = ("usage_record",)
    USAGE_RECORD_FIELD_NUMBER: _ClassVar[int]
    usage_record: UsageRecord
    def __init__(self, usage_record: _Optional[_Union[UsageRecord, _Mapping]] = ...) -> None: ...

class GetSpendReportRequest(_message.Message):
    __slots__ = ("group_by", "start_time", "end_time")
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    group_by: GroupBy
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, group_by: _Optional[_Union[GroupBy, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SpendReportRow(_message.Message):
    __slots__ = ("key", "record_count", "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "amount_micros")
    KEY_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MICROS_FIELD_NUMBER: _ClassVar[int]
    key: str
    record_count: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    amount_micros: int
    def __init__(self, key: _Optional[str] = ..., record_count: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., cache_write_tokens: _Optional[int] = ..., amount_micros: _Optional[int] = ...) -> None: ...

class SpendReport(_message.Message):
    __slots__ = ("rows", "total", "currency_code", "start_time", "end_time")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[SpendReportRow]
    total: SpendReportRow
    currency_code: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, rows: _Optional[_Iterable[_Union[SpendReportRow, _Mapping]]] = ..., total: _Optional[_Union[SpendReportRow, _Mapping]] = ..., currency_code: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExportSpendRequest(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchSpendRequest(_message.Message):
    __slots__ = ("after_sequence",)
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    def __init__(self, after_sequence: _Optional[int] = ...) -> None: ...

class SpendEvent(_message.Message):
    __slots__ = ("sequence", "time", "usage", "alert", "heartbeat")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    usage: UsageRecord
    alert: BudgetAlert
    heartbeat: Heartbeat
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., usage: _Optional[_Union[UsageRecord, _Mapping]] = ..., alert: _Optional[_Union[BudgetAlert, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("head_sequence", "time")
    HEAD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    head_sequence: int
    time: _timestamp_pb2.Timestamp
    def __init__(self, head_sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BudgetAlert(_message.Message):
    __slots__ = ("budget", "threshold_percent", "spent_micros", "limit_micros", "period_start_time")
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_PERCENT_FIELD_NUMBER: _ClassVar[int]
    SPENT_MICROS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_MICROS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_TIME_FIELD_NUMBER: _ClassVar[int]
    budget: str
    threshold_percent: int
    spent_micros: int
    limit_micros: int
    period_start_time: _timestamp_pb2.Timestamp
    def __init__(self, budget: _Optional[str] = ..., threshold_percent: _Optional[int] = ..., spent_micros: _Optional[int] = ..., limit_micros: _Optional[int] = ..., period_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TenantTier(_message.Message):
    __slots__ = ("name", "tier", "monthly_budget_micros", "requests_per_minute")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_BUDGET_MICROS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    name: str
    tier: str
    monthly_budget_micros: int
    requests_per_minute: int
    def __init__(self, name: _Optional[str] = ..., tier: _Optional[str] = ..., monthly_budget_micros: _Optional[int] = ..., requests_per_minute: _Optional[int] = ...) -> None: ...

class GetTenantTierRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UpdateTenantTierRequest(_message.Message):
    __slots__ = ("tier",)
    TIER_FIELD_NUMBER: _ClassVar[int]
    tier: TenantTier
    def __init__(self, tier: _Optional[_Union[TenantTier, _Mapping]] = ...) -> None: ...
