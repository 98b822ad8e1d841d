"""The queue-depth gauge's samples: every unfinished state for every known type,
zeros included; unknown types folded into one label."""

from __future__ import annotations

from services.task import states
from services.task.metrics import OTHER_TYPE, queue_depth_samples


def test_an_empty_queue_reports_zero_for_every_unfinished_state_and_known_type() -> None:
    samples = queue_depth_samples([], ["noop", "rag.answer"])

    assert samples == {
        (state, type_): 0
        for state in ("submitted", "working", "input_required", "auth_required")
        for type_ in ("noop", "rag.answer")
    }


def test_counts_land_on_their_state_and_type() -> None:
    counted = [(states.SUBMITTED, "noop", 3), (states.INPUT_REQUIRED, "rag.answer", 2)]

    samples = queue_depth_samples(counted, ["noop", "rag.answer"])

    assert samples[("submitted", "noop")] == 3
    assert samples[("input_required", "rag.answer")] == 2
    assert samples[("working", "noop")] == 0
    assert sum(samples.values()) == 5


def test_types_no_worker_knows_share_one_label() -> None:
    counted = [(states.SUBMITTED, "legacy.a", 1), (states.SUBMITTED, "legacy.b", 4)]

    samples = queue_depth_samples(counted, ["noop"])

    assert samples[("submitted", OTHER_TYPE)] == 5
    assert {type_ for _, type_ in samples} == {"noop", OTHER_TYPE}
