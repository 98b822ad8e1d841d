"""The reservation rules without a database: ttl and expiry, usage times,
attribution, request fingerprints, and what each hot-path outcome means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf import duration_pb2

from protomesh.cost.v1 import cost_service_pb2 as pb
from services.cost import reservations as rules
from services.cost.reservations import (
    ACTIVE,
    COMMITTED,
    EXPIRED,
    RELEASED,
    Answer,
    BudgetExhausted,
    FutureUsageTime,
    NotActive,
    PriceChanged,
    ReservationNotFound,
)
from services.platform.errors import AlreadyExists

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def reservation(state: int, request_hash: bytes = b"", id_: str = "r1") -> dict[str, Any]:
    return {"id": id_, "state": state, "request_hash": request_hash}


# -- ttl, expiry, usage time, attribution ------------------------------------


def test_an_unset_ttl_expires_after_the_default_ttl() -> None:
    assert rules.expire_time(NOW, None) == NOW + rules.DEFAULT_TTL == NOW + timedelta(minutes=5)


def test_a_set_ttl_expires_after_that_ttl() -> None:
    assert rules.expire_time(NOW, timedelta(seconds=30)) == NOW + timedelta(seconds=30)


def test_an_unset_usage_time_is_now() -> None:
    assert rules.usage_time(None, NOW) == NOW


@pytest.mark.parametrize(
    "offset", [timedelta(days=-40), timedelta(0), rules.FUTURE_SKEW], ids=["past", "now", "skew"]
)
def test_a_usage_time_up_to_the_clock_skew_ahead_is_kept(offset: timedelta) -> None:
    assert rules.usage_time(NOW + offset, NOW) == NOW + offset


def test_a_usage_time_beyond_the_clock_skew_is_refused() -> None:
    with pytest.raises(FutureUsageTime):
        rules.usage_time(NOW + rules.FUTURE_SKEW + timedelta(microseconds=1), NOW)


def test_attribution_without_a_user_is_the_callers() -> None:
    resolved = rules.attributed(pb.Attribution(task="tasks/t1"), "alice")
    assert resolved == pb.Attribution(user_id="alice", task="tasks/t1")


def test_attribution_naming_a_user_keeps_it_and_leaves_the_request_alone() -> None:
    given = pb.Attribution(user_id="bob")
    resolved = rules.attributed(given, "alice")
    assert resolved.user_id == "bob"
    assert resolved is not given


# -- fingerprints ------------------------------------------------------------


def test_reserve_fingerprint_ignores_the_request_id_but_not_the_amount() -> None:
    who = pb.Attribution(user_id="alice")
    first = rules.reserve_digest(pb.ReserveRequest(amount_micros=5, request_id="a"), who)
    assert first == rules.reserve_digest(pb.ReserveRequest(amount_micros=5, request_id="b"), who)
    assert first != rules.reserve_digest(pb.ReserveRequest(amount_micros=6, request_id="a"), who)


def test_reserve_fingerprint_counts_the_resolved_attribution_and_the_ttl() -> None:
    request = pb.ReserveRequest(amount_micros=5)
    alice = rules.reserve_digest(request, pb.Attribution(user_id="alice"))
    assert alice != rules.reserve_digest(request, pb.Attribution(user_id="bob"))
    longer = pb.ReserveRequest(amount_micros=5, ttl=duration_pb2.Duration(seconds=60))
    assert alice != rules.reserve_digest(longer, pb.Attribution(user_id="alice"))


def test_usage_fingerprint_counts_the_usage_and_the_resolved_attribution() -> None:
    request = pb.RecordUsageRequest(
        idempotency_key="k", usage=pb.TokenUsage(model="m", input_tokens=1)
    )
    alice = rules.usage_digest(request, pb.Attribution(user_id="alice"))
    assert alice == rules.usage_digest(request, pb.Attribution(user_id="alice"))
    assert alice != rules.usage_digest(request, pb.Attribution(user_id="bob"))
    more = pb.RecordUsageRequest()
    more.CopyFrom(request)
    more.usage.input_tokens = 2
    assert alice != rules.usage_digest(more, pb.Attribution(user_id="alice"))


def test_commit_fingerprint_is_the_whole_request() -> None:
    usage = pb.TokenUsage(model="m", input_tokens=1)
    one = rules.commit_digest(pb.CommitReservationRequest(name="reservations/a", usage=usage))
    other = rules.commit_digest(pb.CommitReservationRequest(name="reservations/b", usage=usage))
    assert one != other


# -- Reserve -----------------------------------------------------------------


def test_a_new_reservation_is_new() -> None:
    row = {"reservation": reservation(ACTIVE)}
    assert rules.reserve_answer(rules.RESERVED, row, "", b"h", 5) is Answer.NEW


def test_a_repeated_reserve_with_the_same_request_replays() -> None:
    row = {"reservation": reservation(ACTIVE, request_hash=b"h")}
    assert rules.reserve_answer(rules.REPLAYED, row, "call-1", b"h", 5) is Answer.REPLAY


def test_a_request_id_reused_for_another_reservation_already_exists() -> None:
    row = {"reservation": reservation(ACTIVE, request_hash=b"h", id_="r9")}
    with pytest.raises(AlreadyExists) as caught:
        rules.reserve_answer(rules.REPLAYED, row, "call-1", b"other", 5)
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert caught.value.metadata == {"request_id": "call-1", "reservation": "reservations/r9"}


def test_an_exhausted_budget_is_refused_with_its_room() -> None:
    row = {"reservation": None, "budget_id": "b1", "limit_micros": 100, "used_micros": 90}
    with pytest.raises(BudgetExhausted) as caught:
        rules.reserve_answer(rules.EXHAUSTED, row, "", b"h", 20)
    refusal = caught.value
    assert (refusal.budget_id, refusal.limit_micros, refusal.used_micros) == ("b1", 100, 90)
    assert (refusal.requested_micros, refusal.remaining_micros) == (20, 10)


def test_an_overdrawn_budget_has_no_room_not_negative_room() -> None:
    assert BudgetExhausted("b1", 100, 130, 1).remaining_micros == 0


def test_an_unknown_reserve_outcome_is_a_bug() -> None:
    with pytest.raises(ValueError, match="surprise"):
        rules.reserve_answer("surprise", {}, "", b"h", 1)


# -- Commit and Release -------------------------------------------------------


def test_committing_an_active_reservation_is_new() -> None:
    assert rules.settle_answer("committed", reservation(COMMITTED), COMMITTED) is Answer.NEW


def test_committing_a_committed_reservation_again_replays_it() -> None:
    assert rules.settle_answer(rules.SETTLED, reservation(COMMITTED), COMMITTED) is Answer.REPLAY


def test_releasing_an_active_reservation_is_new() -> None:
    assert rules.settle_answer("released", reservation(RELEASED), RELEASED) is Answer.NEW


def test_releasing_a_released_reservation_again_replays_it() -> None:
    assert rules.settle_answer(rules.SETTLED, reservation(RELEASED), RELEASED) is Answer.REPLAY


@pytest.mark.parametrize(
    ("outcome", "state", "wanted"),
    [
        (rules.SETTLED, RELEASED, COMMITTED),  # commit after release
        (rules.SETTLED, COMMITTED, RELEASED),  # release after commit
        (rules.SETTLED, EXPIRED, COMMITTED),  # swept before the commit
        (rules.SETTLED, EXPIRED, RELEASED),
        ("expired", EXPIRED, COMMITTED),  # lapsed, found by the commit itself
        ("expired", EXPIRED, RELEASED),
    ],
)
def test_a_reservation_settled_another_way_is_not_active(
    outcome: str, state: int, wanted: int
) -> None:
    with pytest.raises(NotActive) as caught:
        rules.settle_answer(outcome, reservation(state), wanted)
    assert (caught.value.state, caught.value.wanted) == (state, wanted)


@pytest.mark.parametrize("wanted", [COMMITTED, RELEASED])
def test_settling_a_missing_reservation_is_not_found(wanted: int) -> None:
    with pytest.raises(ReservationNotFound):
        rules.settle_answer(rules.NOT_FOUND, None, wanted)


def test_a_commit_whose_price_kept_changing_is_refused() -> None:
    with pytest.raises(PriceChanged):
        rules.settle_answer(rules.PRICE_CHANGED, reservation(ACTIVE), COMMITTED)


def test_state_names_are_the_proto_names_and_unknown_states_their_number() -> None:
    for state, name in rules.STATE_NAMES.items():
        assert pb.ReservationState.Name(state) == f"RESERVATION_STATE_{name}"
    assert rules.state_name(EXPIRED) == "EXPIRED"
    assert rules.state_name(9) == "9"


# -- RecordUsage --------------------------------------------------------------


def test_recorded_usage_is_new() -> None:
    assert rules.record_answer(rules.RECORDED, {"id": "u1"}, "k", b"h") is Answer.NEW


def test_a_repeated_idempotency_key_with_the_same_usage_replays() -> None:
    usage = {"id": "u1", "request_hash": b"h"}
    assert rules.record_answer(rules.REPLAYED, usage, "k", b"h") is Answer.REPLAY


def test_an_idempotency_key_reused_for_other_usage_already_exists() -> None:
    usage = {"id": "u1", "request_hash": b"h"}
    with pytest.raises(AlreadyExists) as caught:
        rules.record_answer(rules.REPLAYED, usage, "k", b"other")
    assert caught.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert caught.value.metadata == {"idempotency_key": "k", "usage_record": "usageRecords/u1"}


def test_usage_whose_price_kept_changing_is_refused() -> None:
    with pytest.raises(PriceChanged):
        rules.record_answer(rules.PRICE_CHANGED, None, "k", b"h")


# -- Charge -------------------------------------------------------------------


def test_charge_fingerprint_ignores_the_request_id_but_not_the_usage_or_attribution() -> None:
    usage = pb.TokenUsage(model="m", input_tokens=1)
    alice = pb.Attribution(user_id="alice")
    first = rules.charge_digest(pb.ChargeRequest(usage=usage, request_id="a"), alice)
    assert first == rules.charge_digest(pb.ChargeRequest(usage=usage, request_id="b"), alice)
    assert first != rules.charge_digest(
        pb.ChargeRequest(usage=usage, request_id="a"), pb.Attribution(user_id="bob")
    )
    more = pb.TokenUsage(model="m", input_tokens=2)
    assert first != rules.charge_digest(pb.ChargeRequest(usage=more, request_id="a"), alice)


def test_a_charge_key_is_in_a_namespace_no_other_usage_key_can_take() -> None:
    assert rules.charge_key("call-1") == "charges/call-1"


def test_a_new_charge_is_new() -> None:
    row = {"usage": {"id": "u1", "request_hash": b"h"}}
    assert rules.charge_answer(rules.CHARGED, row, "call-1", b"h", 5) is Answer.NEW


def test_a_repeated_charge_with_the_same_request_replays() -> None:
    row = {"usage": {"id": "u1", "request_hash": b"h"}}
    assert rules.charge_answer(rules.REPLAYED, row, "call-1", b"h", 5) is Answer.REPLAY


def test_a_request_id_reused_for_another_charge_already_exists() -> None:
    row = {"usage": {"id": "u1", "request_hash": b"h"}}
    with pytest.raises(AlreadyExists) as caught:
        rules.charge_answer(rules.REPLAYED, row, "call-1", b"other", 5)
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert caught.value.metadata == {"request_id": "call-1", "usage_record": "usageRecords/u1"}


def test_a_charge_over_a_hard_budget_is_refused_with_its_room() -> None:
    row = {"usage": None, "budget_id": "b1", "limit_micros": 100, "used_micros": 90}
    with pytest.raises(BudgetExhausted) as caught:
        rules.charge_answer(rules.EXHAUSTED, row, "call-1", b"h", 20)
    assert (caught.value.budget_id, caught.value.remaining_micros) == ("b1", 10)
    assert caught.value.requested_micros == 20


def test_a_charge_whose_price_kept_changing_is_refused() -> None:
    with pytest.raises(PriceChanged):
        rules.charge_answer(rules.PRICE_CHANGED, {"usage": None}, "call-1", b"h", 1)


def test_an_unknown_charge_outcome_is_a_bug() -> None:
    with pytest.raises(ValueError, match="surprise"):
        rules.charge_answer("surprise", {}, "call-1", b"h", 1)
