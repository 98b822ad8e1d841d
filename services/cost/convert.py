"""Rows ↔ protobuf messages for CostService."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from protomesh.cost.v1 import cost_service_pb2 as pb
from services.cost.budgets import etag
from services.cost.pricebook import PriceVersion
from services.cost.store import Row


def ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def from_ts(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def price_to_pb(price: PriceVersion) -> pb.Price:
    rates = price.rates
    return pb.Price(
        name=f"prices/{price.model}",
        model=price.model,
        currency_code=price.currency_code,
        input_micros_per_mtok=rates.input,
        output_micros_per_mtok=rates.output,
        cached_input_micros_per_mtok=rates.cached_input,
        cache_write_micros_per_mtok=rates.cache_write,
        long_context_threshold_tokens=rates.long_context_threshold_tokens,
        long_context_input_micros_per_mtok=rates.long_context_input,
        long_context_output_micros_per_mtok=rates.long_context_output,
        effective_from=ts(price.effective_from),
        version=price.version,
    )


def usage_to_pb(row: Row) -> pb.UsageRecord:
    return pb.UsageRecord(
        name=f"usageRecords/{row['id']}",
        usage=pb.TokenUsage(
            model=row["model"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cached_input_tokens=row["cached_input_tokens"],
            cache_write_tokens=row["cache_write_tokens"],
        ),
        attribution=pb.Attribution(
            user_id=row["user_id"], api_key_id=row["api_key_id"], task=row["task"]
        ),
        provenance=row["provenance"],
        idempotency_key=row["idempotency_key"],
        usage_time=ts(row["usage_time"]),
        amount_micros=row["amount_micros"],
        currency_code=row["currency_code"],
        price_version=row["price_version"],
        reservation=f"reservations/{row['reservation_id']}" if row["reservation_id"] else "",
        over_estimate=row["over_estimate"],
    )


def reservation_to_pb(
    row: Row, usage: Row | None = None, now: datetime | None = None
) -> pb.Reservation:
    """With `now`, an ACTIVE reservation whose ttl has passed reads as EXPIRED
    (lazy expiry: the sweeper has not reached it yet, but it holds nothing any
    more as far as Reserve, Commit and Release are concerned)."""
    state = row["state"]
    if now is not None and state == pb.RESERVATION_STATE_ACTIVE and row["expire_time"] <= now:
        state = pb.RESERVATION_STATE_EXPIRED
    message = pb.Reservation(
        name=f"reservations/{row['id']}",
        amount_micros=row["amount_micros"],
        attribution=pb.Attribution(
            user_id=row["user_id"], api_key_id=row["api_key_id"], task=row["task"]
        ),
        budgets=[f"budgets/{budget_id}" for budget_id in row["budget_ids"]],
        state=state,
        expire_time=ts(row["expire_time"]),
        create_time=ts(row["create_time"]),
    )
    if usage is not None:
        message.usage_record.CopyFrom(usage_to_pb(usage))
    return message


def budget_to_pb(row: Row, spent_micros: int, period_start: datetime) -> pb.Budget:
    return pb.Budget(
        name=f"budgets/{row['id']}",
        display_name=row["display_name"],
        scope_kind=row["scope_kind"],
        scope_id=row["scope_id"],
        period=row["period"],
        hard_limit_micros=row["hard_limit_micros"],
        soft_limit_micros=row["soft_limit_micros"],
        alert_thresholds_percent=list(row["alert_thresholds"]),
        spent_micros=spent_micros,
        reserved_micros=row["reserved_micros"],
        period_start_time=ts(period_start),
        create_time=ts(row["create_time"]),
        update_time=ts(row["update_time"]),
        etag=etag(row["id"], row["revision"]),
    )


def alert_to_pb(row: Row) -> pb.BudgetAlert:
    return pb.BudgetAlert(
        budget=f"budgets/{row['budget_id']}",
        threshold_percent=row["threshold_percent"],
        spent_micros=row["spent_micros"],
        limit_micros=row["limit_micros"],
        period_start_time=ts(row["period_start"]),
    )


def event_to_pb(row: Row) -> pb.SpendEvent:
    event = pb.SpendEvent(sequence=row["sequence"], time=ts(row["event_time"]))
    if row["u"] is not None and row["u"]["id"] is not None:
        event.usage.CopyFrom(usage_to_pb(row["u"]))
    elif row["a"] is not None and row["a"]["id"] is not None:
        event.alert.CopyFrom(alert_to_pb(row["a"]))
    return event


def report_row_to_pb(row: Row) -> pb.SpendReportRow:
    return pb.SpendReportRow(
        key=row["key"] or "",
        record_count=row["record_count"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cached_input_tokens=row["cached_input_tokens"],
        cache_write_tokens=row["cache_write_tokens"],
        amount_micros=row["amount_micros"],
    )
