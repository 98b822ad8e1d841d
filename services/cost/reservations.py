"""Reservation rules, and the idempotency of CostService's hot-path writes.

A reservation holds an amount against every budget that applies to its
attribution until it is committed (the actual usage is recorded), released (the
call did not happen) or expired (its ttl passed). The hot-path functions in
sql/migrations/ apply a call in one statement and report what they found as an
outcome (`reserved`, `replayed`, `exhausted`, `committed`, `released`,
`settled`, `expired`, `not_found`, `price_changed`, `recorded`, `charged`); this module
says what each outcome means for the caller: a new result, the replay of an
earlier call, or a refusal (a `Refusal`, which the servicer maps to a status).

What is decided in SQL, inside the write, stays there: the hard-limit check, the
expiry of lapsed holds, and the `over_estimate` flag of a commit above the
reserved amount (the actual cost is recorded in full, never capped).

Pure rules, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from protomesh.cost.v1 import cost_service_pb2 as pb
from services.platform.idempotency import ensure_replay, request_digest

DEFAULT_TTL = timedelta(minutes=5)
# How far ahead of the service's clock a caller's usage time may be (clock skew).
FUTURE_SKEW = timedelta(minutes=5)

ACTIVE = pb.RESERVATION_STATE_ACTIVE
COMMITTED = pb.RESERVATION_STATE_COMMITTED
RELEASED = pb.RESERVATION_STATE_RELEASED
EXPIRED = pb.RESERVATION_STATE_EXPIRED
STATE_NAMES: dict[int, str] = {
    ACTIVE: "ACTIVE",
    COMMITTED: "COMMITTED",
    RELEASED: "RELEASED",
    EXPIRED: "EXPIRED",
}

# Outcomes of the hot-path functions (sql/migrations/0001_cost.sql, 0002, 0003).
RESERVED = "reserved"
REPLAYED = "replayed"
EXHAUSTED = "exhausted"
SETTLED = "settled"
NOT_FOUND = "not_found"
PRICE_CHANGED = "price_changed"
RECORDED = "recorded"
CHARGED = "charged"
# The outcome of the call that moves an active reservation to a state.
SETTLING: dict[int, str] = {COMMITTED: "committed", RELEASED: "released"}


class Answer(Enum):
    """How a successful call answers."""

    NEW = "new"  # this call wrote the row it returns
    REPLAY = "replay"  # an earlier call did: answer with what that one stored


class Refusal(Exception):
    """A call the rules refuse; the servicer maps each kind to a status."""


class ReservationNotFound(Refusal):
    """No such reservation (for this tenant)."""


class NotActive(Refusal):
    """The reservation was settled in another way than this call asks for."""

    def __init__(self, state: int, wanted: int) -> None:
        super().__init__(f"the reservation is {state_name(state)}, not ACTIVE")
        self.state = state
        self.wanted = wanted


class BudgetExhausted(Refusal):
    """A hard budget had no room for the amount (the first such budget found).
    `used_micros` is its committed spend in the period plus the amounts held."""

    def __init__(
        self, budget_id: str, limit_micros: int, used_micros: int, requested_micros: int
    ) -> None:
        super().__init__(f"budgets/{budget_id} has no room for {requested_micros} micros")
        self.budget_id = budget_id
        self.limit_micros = limit_micros
        self.used_micros = used_micros
        self.requested_micros = requested_micros

    @property
    def remaining_micros(self) -> int:
        return max(0, self.limit_micros - self.used_micros)


class PriceChanged(Refusal):
    """The price version the call was rated with stopped being in effect, every try."""


class FutureUsageTime(Refusal):
    """A usage time further ahead of the clock than FUTURE_SKEW."""


def state_name(state: int) -> str:
    return STATE_NAMES.get(state, str(state))


def expire_time(now: datetime, ttl: timedelta | None) -> datetime:
    """When a reservation made at `now` lapses: after its ttl, DEFAULT_TTL when unset.
    (The ttl's bounds are the request's validation rules.)"""
    return now + (DEFAULT_TTL if ttl is None else ttl)


def usage_time(requested: datetime | None, now: datetime) -> datetime:
    """The time usage is recorded at: the caller's (past, or within FUTURE_SKEW
    of the clock), else `now`."""
    if requested is None:
        return now
    if requested > now + FUTURE_SKEW:
        raise FutureUsageTime(f"{requested.isoformat()} is in the future")
    return requested


def attributed(attribution: pb.Attribution, caller_user_id: str) -> pb.Attribution:
    """The attribution spend is recorded under: the caller's user when none is named."""
    resolved = pb.Attribution()
    resolved.CopyFrom(attribution)
    if not resolved.user_id:
        resolved.user_id = caller_user_id
    return resolved


# -- idempotency: what identifies a request, and what a repeat of it means ----


def reserve_digest(request: pb.ReserveRequest, attribution: pb.Attribution) -> bytes:
    """Reserve's fingerprint: the request as attributed, without its request id
    (the key it is stored under)."""
    fingerprint = pb.ReserveRequest()
    fingerprint.CopyFrom(request)
    fingerprint.request_id = ""
    fingerprint.attribution.CopyFrom(attribution)
    return request_digest(fingerprint)


def usage_digest(request: pb.RecordUsageRequest, attribution: pb.Attribution) -> bytes:
    """RecordUsage's fingerprint: the request as attributed."""
    fingerprint = pb.RecordUsageRequest()
    fingerprint.CopyFrom(request)
    fingerprint.attribution.CopyFrom(attribution)
    return request_digest(fingerprint)


def charge_digest(request: pb.ChargeRequest, attribution: pb.Attribution) -> bytes:
    """Charge's fingerprint: the request as attributed, without its request id
    (the key it is stored under)."""
    fingerprint = pb.ChargeRequest()
    fingerprint.CopyFrom(request)
    fingerprint.request_id = ""
    fingerprint.attribution.CopyFrom(attribution)
    return request_digest(fingerprint)


def charge_key(request_id: str) -> str:
    """The idempotency key of a charge's usage record: its own namespace, so that
    neither RecordUsage keys (no `/`) nor commits (`reservations/…`) meet it."""
    return f"charges/{request_id}"


def commit_digest(request: pb.CommitReservationRequest) -> bytes:
    """CommitReservation's fingerprint (stored with the usage record it writes)."""
    return request_digest(request)


def reserve_answer(
    outcome: str, row: Mapping[str, Any], request_id: str, digest: bytes, amount_micros: int
) -> Answer:
    """What Reserve's outcome means. A request id seen before replays its
    reservation if the request is the same (ALREADY_EXISTS otherwise)."""
    if outcome == EXHAUSTED:
        raise BudgetExhausted(
            row["budget_id"], row["limit_micros"], row["used_micros"], amount_micros
        )
    if outcome == REPLAYED:
        reservation = row["reservation"]
        ensure_replay(
            reservation["request_hash"],
            digest,
            "request_id",
            request_id,
            "a different reservation",
            metadata={"reservation": f"reservations/{reservation['id']}"},
        )
        return Answer.REPLAY
    if outcome == RESERVED:
        return Answer.NEW
    raise ValueError(f"unknown Reserve outcome {outcome!r}")


def settle_answer(outcome: str, reservation: Mapping[str, Any] | None, wanted: int) -> Answer:
    """What the outcome of a Commit (`wanted` COMMITTED) or Release (RELEASED)
    means. A reservation already in the wanted state returns unchanged (the
    first call's answer, whatever this one carried); one that was settled in
    another way or has expired refuses."""
    if outcome == NOT_FOUND or reservation is None:
        raise ReservationNotFound()
    if outcome == PRICE_CHANGED:
        raise PriceChanged()
    if outcome == SETTLING[wanted]:
        return Answer.NEW
    state: int = reservation["state"]
    if outcome == SETTLED and state == wanted:
        return Answer.REPLAY
    raise NotActive(state, wanted)


def charge_answer(
    outcome: str, row: Mapping[str, Any], request_id: str, digest: bytes, amount_micros: int
) -> Answer:
    """What Charge's outcome means: Reserve's refusal when a hard budget has no
    room, and a request id seen before replays its record if the request is the
    same (ALREADY_EXISTS otherwise)."""
    if outcome == EXHAUSTED:
        raise BudgetExhausted(
            row["budget_id"], row["limit_micros"], row["used_micros"], amount_micros
        )
    if outcome == PRICE_CHANGED:
        raise PriceChanged()
    if outcome == REPLAYED:
        usage = row["usage"]
        ensure_replay(
            usage["request_hash"],
            digest,
            "request_id",
            request_id,
            "a different charge",
            metadata={"usage_record": f"usageRecords/{usage['id']}"},
        )
        return Answer.REPLAY
    if outcome == CHARGED:
        return Answer.NEW
    raise ValueError(f"unknown Charge outcome {outcome!r}")


def record_answer(outcome: str, usage: Mapping[str, Any] | None, key: str, digest: bytes) -> Answer:
    """What RecordUsage's outcome means. An idempotency key seen before replays
    its record if the usage is the same (ALREADY_EXISTS otherwise)."""
    if outcome == PRICE_CHANGED:
        raise PriceChanged()
    if outcome == REPLAYED:
        assert usage is not None
        ensure_replay(
            usage["request_hash"],
            digest,
            "idempotency_key",
            key,
            "different usage",
            reason="IDEMPOTENCY_KEY_REUSED",
            metadata={"usage_record": f"usageRecords/{usage['id']}"},
        )
        return Answer.REPLAY
    if outcome == RECORDED:
        return Answer.NEW
    raise ValueError(f"unknown RecordUsage outcome {outcome!r}")
