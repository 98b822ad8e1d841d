"""TaskService and worker domain metrics (RED per RPC comes from the platform)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from services.task import states

QUEUE_DEPTH = Gauge(
    "protomesh_task_queue_depth",
    "Tasks not yet finished, by state and type, across tenants (sampled from the database "
    "by every worker process; aggregate with max, not sum).",
    ["state", "type"],
)
TASK_DURATION = Histogram(
    "protomesh_task_duration_seconds",
    "Time a task ran on a worker, per attempt, by task type and how the attempt ended "
    "(the state it left the task in: completed, failed, canceled, input_required, or "
    "submitted when it was re-queued for a retry).",
    ["type", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
RETRIES = Counter(
    "protomesh_task_retries_total",
    "Attempts that failed and were re-queued with backoff, by task type.",
    ["type"],
)
DEAD_LETTERS = Counter(
    "protomesh_task_dead_letters_total",
    "Tasks failed for good after using every attempt, by task type.",
    ["type"],
)

UNFINISHED = (states.SUBMITTED, states.WORKING, states.INPUT_REQUIRED, states.AUTH_REQUIRED)
OTHER_TYPE = "other"


def queue_depth_samples(
    counted: Iterable[tuple[int, str, int]], types: Iterable[str]
) -> dict[tuple[str, str], int]:
    """The queue-depth gauge's value for every (state, type) label pair: each
    unfinished state for each known task type (0 when none), so dashboards see
    an empty queue as zeros; counts of unknown types are folded into "other"."""
    known = set(types)
    samples = {(states.state_name(s).lower(), t): 0 for s in UNFINISHED for t in sorted(known)}
    for state, type_, count in counted:
        key = (states.state_name(state).lower(), type_ if type_ in known else OTHER_TYPE)
        samples[key] = samples.get(key, 0) + count
    return samples
