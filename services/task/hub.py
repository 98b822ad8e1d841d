"""Event wake-ups for WatchTask: one LISTEN connection per server process on
channel `task_events` (payload `<task id>:<seq>`), fanned out to the streams
watching that task (`services.platform.notify.Hub`). Streams read the events
themselves from the table; a notification only says "look again", so a lost one
costs a fallback timeout, never an event."""

from __future__ import annotations

from services.platform.notify import Hub

CHANNEL = "task_events"
APPLICATION_NAME = "protomesh-task-events"


def event_hub(dsn: str) -> Hub:
    return Hub(dsn, CHANNEL, APPLICATION_NAME, key_of=lambda payload: payload.partition(":")[0])
