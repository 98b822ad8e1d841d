"""The task lifecycle (A2A v1.0): states, legal transitions, retry backoff.

Pure rules, no I/O. The database enforces the same transition table
(`task.check_transition` in sql/migrations/0001_task.sql), so neither a bug here
nor one in a query can move a task along an illegal edge.
"""

from __future__ import annotations

from protomesh.task.v1 import task_service_pb2 as pb

SUBMITTED = pb.TASK_STATE_SUBMITTED
WORKING = pb.TASK_STATE_WORKING
INPUT_REQUIRED = pb.TASK_STATE_INPUT_REQUIRED
AUTH_REQUIRED = pb.TASK_STATE_AUTH_REQUIRED
COMPLETED = pb.TASK_STATE_COMPLETED
FAILED = pb.TASK_STATE_FAILED
CANCELED = pb.TASK_STATE_CANCELED
REJECTED = pb.TASK_STATE_REJECTED

TERMINAL = frozenset({COMPLETED, FAILED, CANCELED, REJECTED})
PAUSED = frozenset({INPUT_REQUIRED, AUTH_REQUIRED})

# state -> states it may move to. FAILED -> SUBMITTED is RetryTask (dead letter
# re-queued); WORKING -> SUBMITTED is a retry after a failed attempt or a lease
# that expired under a dead worker.
TRANSITIONS: dict[int, frozenset[int]] = {
    SUBMITTED: frozenset({WORKING, CANCELED, REJECTED}),
    WORKING: frozenset({SUBMITTED, INPUT_REQUIRED, AUTH_REQUIRED, COMPLETED, FAILED, CANCELED}),
    INPUT_REQUIRED: frozenset({SUBMITTED, CANCELED}),
    AUTH_REQUIRED: frozenset({SUBMITTED, CANCELED}),
    FAILED: frozenset({SUBMITTED}),
    COMPLETED: frozenset(),
    CANCELED: frozenset(),
    REJECTED: frozenset(),
}


class IllegalTransition(Exception):
    """A state change the lifecycle does not allow."""

    def __init__(self, old: int, new: int) -> None:
        super().__init__(f"a {state_name(old)} task cannot become {state_name(new)}")
        self.old = old
        self.new = new


def state_name(state: int) -> str:
    return pb.TaskState.Name(state).removeprefix("TASK_STATE_")  # type: ignore[arg-type]


def is_terminal(state: int) -> bool:
    return state in TERMINAL


def can_transition(old: int, new: int) -> bool:
    return new == old or new in TRANSITIONS.get(old, frozenset())


def check_transition(old: int, new: int) -> None:
    if not can_transition(old, new):
        raise IllegalTransition(old, new)
