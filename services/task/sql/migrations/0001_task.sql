-- TaskService: a durable queue of agent tasks, their append-only event logs
-- and their artifacts. States are protomesh.task.v1.TaskState numbers:
--   1 SUBMITTED  2 WORKING  3 INPUT_REQUIRED  4 AUTH_REQUIRED
--   5 COMPLETED  6 FAILED   7 CANCELED        8 REJECTED
--
-- Row-level security: the RPCs run with `app.tenant_id` set and see one
-- tenant's rows. Workers claim across tenants, so every table also admits a
-- transaction that set `app.worker = 'on'` (services.platform.db
-- .settings_transaction(pool, worker="on")); only the worker process does that,
-- and every write it makes is fenced by the task's lease (owner + epoch).
CREATE SCHEMA IF NOT EXISTS task;

CREATE TABLE task.tasks (
  id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id         text        NOT NULL,
  type              text        NOT NULL,
  input             jsonb       NOT NULL DEFAULT '{}',
  priority          smallint    NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 9),
  context_id        text        NOT NULL DEFAULT '',
  -- AIP-155 idempotency: unique per tenant; the hash tells a replay from a reuse.
  request_id        text,
  request_hash      text,
  state             smallint    NOT NULL CHECK (state BETWEEN 1 AND 8),
  status_message    text        NOT NULL DEFAULT '',
  status_time       timestamptz NOT NULL DEFAULT now(),
  progress_step     text        NOT NULL DEFAULT '',
  progress_percent  smallint    NOT NULL DEFAULT 0,
  error             jsonb,                           -- {"code": int, "message": text}
  attempts          integer     NOT NULL DEFAULT 0,
  max_attempts      integer     NOT NULL CHECK (max_attempts >= 1),
  attempt_log       jsonb       NOT NULL DEFAULT '[]', -- [{number, worker_id, start_time, end_time, error}]
  timeout_seconds   double precision NOT NULL,
  -- The lease: who runs the task, until when, and the fencing token. Every
  -- worker write is conditional on (lease_owner, lease_epoch, state = 2).
  lease_owner       text,
  lease_epoch       bigint      NOT NULL DEFAULT 0,
  lease_expires_at  timestamptz,
  run_after         timestamptz NOT NULL DEFAULT now(), -- retry backoff
  cancel_requested  boolean     NOT NULL DEFAULT false,
  cancel_reason     text        NOT NULL DEFAULT '',
  inputs            jsonb       NOT NULL DEFAULT '[]',  -- SendTaskInput answers, oldest first
  checkpoint        jsonb       NOT NULL DEFAULT '{}',  -- workflow state kept across pauses
  cost_limit_micros bigint      NOT NULL DEFAULT 0,
  cost_spent_micros bigint      NOT NULL DEFAULT 0,
  submitter         text        NOT NULL,             -- user id (token `sub`)
  submitter_scopes  text        NOT NULL DEFAULT '',
  traceparent       text        NOT NULL DEFAULT '',
  last_event_seq    bigint      NOT NULL DEFAULT 0,
  create_time       timestamptz NOT NULL DEFAULT now(),
  update_time       timestamptz NOT NULL DEFAULT now(),
  start_time        timestamptz,
  end_time          timestamptz
);

CREATE UNIQUE INDEX tasks_request_id ON task.tasks (tenant_id, request_id)
  WHERE request_id IS NOT NULL;
-- The queue: claimable tasks by priority, then age.
CREATE INDEX tasks_queue ON task.tasks (priority DESC, create_time) WHERE state = 1;
CREATE INDEX tasks_leases ON task.tasks (lease_expires_at) WHERE state = 2;
CREATE INDEX tasks_list ON task.tasks (tenant_id, create_time DESC, id DESC);

CREATE TABLE task.task_events (
  task_id   uuid        NOT NULL REFERENCES task.tasks (id) ON DELETE CASCADE,
  seq       bigint      NOT NULL,  -- gapless per task, assigned under the task row lock
  tenant_id text        NOT NULL,
  time      timestamptz NOT NULL DEFAULT clock_timestamp(),
  kind      text        NOT NULL,  -- the TaskEvent oneof field name
  body      jsonb       NOT NULL,  -- that field in proto3 JSON
  PRIMARY KEY (task_id, seq)
);

CREATE TABLE task.artifacts (
  task_id     uuid        NOT NULL REFERENCES task.tasks (id) ON DELETE CASCADE,
  artifact_id text        NOT NULL,
  tenant_id   text        NOT NULL,
  name        text        NOT NULL DEFAULT '',
  description text        NOT NULL DEFAULT '',
  parts       jsonb       NOT NULL DEFAULT '[]',
  metadata    jsonb       NOT NULL DEFAULT '{}',
  create_time timestamptz NOT NULL DEFAULT clock_timestamp(),
  update_time timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (task_id, artifact_id)
);

-- Row-level security.
ALTER TABLE task.tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE task.tasks FORCE ROW LEVEL SECURITY;
ALTER TABLE task.task_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE task.task_events FORCE ROW LEVEL SECURITY;
ALTER TABLE task.artifacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE task.artifacts FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON task.tasks
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY worker_access ON task.tasks
  USING (current_setting('app.worker', true) = 'on')
  WITH CHECK (current_setting('app.worker', true) = 'on');
CREATE POLICY tenant_isolation ON task.task_events
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY worker_access ON task.task_events
  USING (current_setting('app.worker', true) = 'on')
  WITH CHECK (current_setting('app.worker', true) = 'on');
CREATE POLICY tenant_isolation ON task.artifacts
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY worker_access ON task.artifacts
  USING (current_setting('app.worker', true) = 'on')
  WITH CHECK (current_setting('app.worker', true) = 'on');

-- The lifecycle, enforced by the database as well as by services/task/states.py:
-- a bug in either cannot move a task along an illegal edge.
CREATE FUNCTION task.check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state = OLD.state THEN
    RETURN NEW;
  END IF;
  IF NOT (
       (OLD.state = 1 AND NEW.state IN (2, 7, 8))
    OR (OLD.state = 2 AND NEW.state IN (1, 3, 4, 5, 6, 7))
    OR (OLD.state IN (3, 4) AND NEW.state IN (1, 7))
    OR (OLD.state = 6 AND NEW.state = 1)
  ) THEN
    RAISE EXCEPTION 'illegal task transition % -> %', OLD.state, NEW.state
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER tasks_transition BEFORE UPDATE OF state ON task.tasks
  FOR EACH ROW EXECUTE FUNCTION task.check_transition();

-- The event log is append-only.
CREATE FUNCTION task.forbid_event_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'task events are append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER task_events_append_only BEFORE UPDATE ON task.task_events
  FOR EACH ROW EXECUTE FUNCTION task.forbid_event_update();

-- Wake-ups. `task_events`: payload `<task id>:<seq>`, read by WatchTask.
-- `task_queue`: a task became claimable, read by workers. Delivered at commit.
CREATE FUNCTION task.notify_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('task_events', NEW.task_id::text || ':' || NEW.seq::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER task_events_notify AFTER INSERT ON task.task_events
  FOR EACH ROW EXECUTE FUNCTION task.notify_event();

CREATE FUNCTION task.notify_queue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('task_queue', '');
  RETURN NULL;
END
$$;

CREATE TRIGGER tasks_queue_notify AFTER INSERT OR UPDATE OF state ON task.tasks
  FOR EACH ROW WHEN (NEW.state = 1) EXECUTE FUNCTION task.notify_queue();
