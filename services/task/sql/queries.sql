-- Named queries of the task service, called by name from services/task/store.py.
-- Each block starts with `-- name: <name>`. Parameters are positional ($n).
-- Queries marked (worker) run under app.worker = 'on'; the rest under the
-- caller's app.tenant_id. Worker writes are fenced: they match only while
-- the caller still holds the lease (owner, epoch) of a WORKING task.

-- name: create_task
-- Insert with its first status event, or return the task an earlier call with
-- the same request id made (one statement; ON CONFLICT DO UPDATE locks and
-- returns the existing row even when it was inserted concurrently). `created`
-- tells the two apart.
WITH made AS (
  INSERT INTO task.tasks AS t (
    tenant_id, type, input, priority, context_id, request_id, request_hash, state,
    status_message, max_attempts, timeout_seconds, cost_limit_micros, submitter,
    submitter_scopes, traceparent, error, end_time, last_event_seq, tracestate
  ) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8::smallint, $9, $10, $11, $12, $13, $14, $15, $16,
    CASE WHEN $8::smallint = 8 THEN now() END, 1, $18
  )
  ON CONFLICT (tenant_id, request_id) WHERE request_id IS NOT NULL
  DO UPDATE SET request_id = t.request_id
  RETURNING t.*, (xmax = 0) AS created
), logged AS (
  INSERT INTO task.task_events (task_id, seq, tenant_id, kind, body)
  SELECT id, 1, tenant_id, 'status_update', $17 FROM made WHERE created
)
SELECT * FROM made;

-- name: get_task
SELECT * FROM task.tasks WHERE id = $1;

-- name: lock_task
SELECT * FROM task.tasks WHERE id = $1 FOR UPDATE;

-- name: task_events_after
SELECT seq, time, kind, body FROM task.task_events
WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3;

-- name: task_history
SELECT * FROM (
  SELECT seq, time, kind, body FROM task.task_events
  WHERE task_id = $1 ORDER BY seq DESC LIMIT $2
) latest ORDER BY seq;

-- name: task_artifacts
SELECT artifact_id, name, description, parts, metadata FROM task.artifacts
WHERE task_id = $1 ORDER BY create_time, artifact_id;

-- name: transition
-- A state change by the API (cancel, input, retry) on a locked row, with its
-- status event. $4: clear the lease; $5: new run_after (NULL keeps it).
WITH changed AS (
  UPDATE task.tasks SET
    state = $2::smallint, status_message = $3, status_time = now(), update_time = now(),
    last_event_seq = last_event_seq + 1,
    lease_owner = CASE WHEN $4::boolean THEN NULL ELSE lease_owner END,
    lease_expires_at = CASE WHEN $4::boolean THEN NULL ELSE lease_expires_at END,
    run_after = coalesce($5::timestamptz, run_after),
    end_time = CASE WHEN $2::smallint IN (5, 6, 7, 8) THEN now() ELSE NULL END
  WHERE id = $1
  RETURNING id, tenant_id, last_event_seq
)
INSERT INTO task.task_events (task_id, seq, tenant_id, kind, body)
SELECT id, last_event_seq, tenant_id, 'status_update', $6 FROM changed
RETURNING seq;

-- name: request_cancel
-- A running task is told to stop; the worker holding it ends it CANCELED.
UPDATE task.tasks SET cancel_requested = true, cancel_reason = $2, update_time = now()
WHERE id = $1;

-- name: notify_cancel
SELECT pg_notify('task_cancel', $1::text);

-- name: add_input
UPDATE task.tasks SET inputs = inputs || jsonb_build_array($2::jsonb),
  max_attempts = max_attempts + 1
WHERE id = $1;

-- name: reset_for_retry
UPDATE task.tasks SET max_attempts = attempts + $2, error = NULL, cancel_requested = false
WHERE id = $1;

-- name: delete_task
DELETE FROM task.tasks WHERE id = $1;

-- name: list_tasks
-- Newest first; keyset pagination on (create_time, id). $1 page size + 1,
-- $2/$3 the last row of the previous page (NULL on the first page); the
-- compiled filter is appended by the store with parameters from $4.
SELECT * FROM task.tasks
WHERE ($2::timestamptz IS NULL OR (create_time, id) < ($2, $3::uuid))
  AND ({filter})
ORDER BY create_time DESC, id DESC
LIMIT $1;

-- name: claim_tasks
-- (worker) Take up to $2 claimable tasks, highest priority then oldest first,
-- skipping rows other workers hold, and record each claim as an attempt with
-- a WORKING event. The epoch bump is the new fencing token.
WITH next AS (
  SELECT id FROM task.tasks
  WHERE state = 1 AND run_after <= now()
  ORDER BY priority DESC, create_time
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE task.tasks t SET
    state = 2, lease_owner = $1::text, lease_epoch = t.lease_epoch + 1,
    lease_expires_at = now() + make_interval(secs => $3::double precision),
    attempts = t.attempts + 1,
    start_time = coalesce(t.start_time, now()), update_time = now(), status_time = now(),
    status_message = '', last_event_seq = t.last_event_seq + 1,
    attempt_log = t.attempt_log || jsonb_build_array(jsonb_build_object(
      'number', t.attempts + 1, 'worker_id', $1::text, 'start_time', now()))
  FROM next WHERE t.id = next.id
  RETURNING t.*
), logged AS (
  INSERT INTO task.task_events (task_id, seq, tenant_id, kind, body)
  SELECT id, last_event_seq, tenant_id, 'status_update', jsonb_build_object(
    'state', 'TASK_STATE_WORKING',
    'message', format('attempt %s of %s', attempts, max_attempts))
  FROM claimed
)
SELECT * FROM claimed;

-- name: next_due
-- (worker) When the earliest backed-off task becomes claimable.
SELECT min(run_after) FROM task.tasks WHERE state = 1;

-- name: queue_depth
-- (worker) Unfinished tasks by state and type, for the queue-depth gauge; the
-- literal states match the partial index tasks_unfinished (0002).
SELECT state, type, count(*) AS tasks
FROM task.tasks
WHERE state IN (1, 2, 3, 4)
GROUP BY state, type;

-- name: heartbeat
-- (worker) Extend the lease; no row means the lease is lost (fenced).
UPDATE task.tasks SET lease_expires_at = now() + make_interval(secs => $4::double precision)
WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND state = 2
RETURNING cancel_requested, cancel_reason;

-- name: worker_event
-- (worker, fenced) Append an event; progress events also update the task's
-- progress ($6, $7) and cost events its spend ($8).
WITH bumped AS (
  UPDATE task.tasks SET
    last_event_seq = last_event_seq + 1, update_time = now(),
    progress_step = coalesce($6::text, progress_step),
    progress_percent = coalesce($7::smallint, progress_percent),
    cost_spent_micros = cost_spent_micros + $8::bigint
  WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND state = 2
  RETURNING id, tenant_id, last_event_seq
)
INSERT INTO task.task_events (task_id, seq, tenant_id, kind, body)
SELECT id, last_event_seq, tenant_id, $4, $5 FROM bumped
RETURNING seq;

-- name: upsert_artifact
-- (worker) Runs after a fenced worker_event in the same transaction.
-- $7: append the parts instead of replacing them.
INSERT INTO task.artifacts AS a (task_id, artifact_id, tenant_id, name, description, parts, metadata)
SELECT id, $2, tenant_id, $3, $4, $5, $6 FROM task.tasks WHERE id = $1
ON CONFLICT (task_id, artifact_id) DO UPDATE SET
  name = CASE WHEN EXCLUDED.name = '' THEN a.name ELSE EXCLUDED.name END,
  description = CASE WHEN EXCLUDED.description = '' THEN a.description ELSE EXCLUDED.description END,
  parts = CASE WHEN $7 THEN a.parts || EXCLUDED.parts ELSE EXCLUDED.parts END,
  metadata = a.metadata || EXCLUDED.metadata,
  update_time = clock_timestamp();

-- name: save_checkpoint
-- (worker, fenced)
UPDATE task.tasks SET checkpoint = $4, update_time = now()
WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND state = 2
RETURNING id;

-- name: hold_reservation
-- (worker, fenced) Remember a reservation the attempt took before a model call.
UPDATE task.tasks SET held_reservations = array_append(held_reservations, $4::text)
WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND state = 2
RETURNING id;

-- name: forget_reservations
-- (worker) Drop reservations that were committed or released ($2) from the
-- task's held list, whoever holds the lease now.
UPDATE task.tasks SET held_reservations = ARRAY(
  SELECT name FROM unnest(held_reservations) AS name WHERE name <> ALL($2::text[]))
WHERE id = $1 AND held_reservations && $2::text[];

-- name: orphaned_holds
-- (worker) Reservations of tasks no attempt is running: a live attempt forgets
-- its own before it ends, so these belong to a worker that died mid-call (a
-- task already taken over again is cleaned up by its new attempt at start).
SELECT id, tenant_id, submitter, submitter_scopes, traceparent, lease_epoch, held_reservations
FROM task.tasks
WHERE held_reservations <> '{}' AND state <> 2
LIMIT $1;

-- name: finish
-- (worker, fenced) End the attempt: the task moves to $4 (COMPLETED, FAILED,
-- CANCELED, INPUT_REQUIRED or back to SUBMITTED after $8 seconds of backoff),
-- releasing the lease, closing the attempt record and logging the status.
WITH ended AS (
  UPDATE task.tasks SET
    state = $4::smallint, status_message = $5, status_time = now(), update_time = now(),
    error = CASE WHEN $4::smallint = 6 THEN $6::jsonb ELSE NULL END,
    lease_owner = NULL, lease_expires_at = NULL,
    run_after = CASE WHEN $4::smallint = 1
      THEN now() + make_interval(secs => $8::double precision) ELSE run_after END,
    end_time = CASE WHEN $4::smallint IN (5, 6, 7) THEN now() ELSE NULL END,
    last_event_seq = last_event_seq + 1,
    attempt_log = jsonb_set(
      attempt_log, ARRAY[(jsonb_array_length(attempt_log) - 1)::text],
      (attempt_log -> -1) || jsonb_strip_nulls(jsonb_build_object('end_time', now(), 'error', $6::jsonb)))
  WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND state = 2
  RETURNING id, tenant_id, last_event_seq
)
INSERT INTO task.task_events (task_id, seq, tenant_id, kind, body)
SELECT id, last_event_seq, tenant_id, 'status_update', $7 FROM ended
RETURNING seq;

-- name: expired_leases
-- (worker) WORKING tasks whose worker stopped heartbeating, locked for the reaper.
SELECT * FROM task.tasks
WHERE state = 2 AND lease_expires_at < now()
ORDER BY lease_expires_at
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: reap
-- (worker) Close a dead worker's attempt on a locked row: back to the queue,
-- or FAILED (attempts used up) or CANCELED (cancel was requested).
WITH reaped AS (
  UPDATE task.tasks SET
    state = $2::smallint, status_message = $3, status_time = now(), update_time = now(),
    error = CASE WHEN $2::smallint = 6 THEN $4::jsonb ELSE NULL END,
    lease_owner = NULL, lease_expires_at = NULL, run_after = now(),
    end_time = CASE WHEN $2::smallint IN (6, 7) THEN now() ELSE NULL END,
    last_event_seq = last_event_seq + 1,
    attempt_log = jsonb_set(
      attempt_log, ARRAY[(jsonb_array_length(attempt_log) - 1)::text],
      (attempt_log -> -1) || jsonb_build_object('end_time', now(), 'error', $4::jsonb))
  WHERE id = $1
  RETURNING id, tenant_id, last_event_seq
)
INSERT INTO task.task_events (task_id, seq, tenant_id, kind, body)
SELECT id, last_event_seq, tenant_id, 'status_update', $5 FROM reaped
RETURNING seq;
