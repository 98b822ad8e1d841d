-- A task continues the trace of the CreateTask call that made it: with
-- `traceparent` (0001) the worker also needs the vendor part of the W3C trace
-- context, `tracestate`, to resume it unchanged.
ALTER TABLE task.tasks ADD COLUMN tracestate text NOT NULL DEFAULT '';
