"""TaskService and worker domain metrics (RED per RPC comes from the platform)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUEUE_DEPTH = Gauge(
    "protomesh_task_queue_depth",
    "Tasks not yet finished, by state and type (sampled from the database).",
    ["state", "type"],
)
TASK_DURATION = Histogram(
    "protomesh_task_attempt_duration_seconds",
    "Time one attempt ran on a worker, by task type and how the attempt ended.",
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
