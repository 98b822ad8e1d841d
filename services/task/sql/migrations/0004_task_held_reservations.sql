-- Cost reservations an attempt holds while its model call is under way
-- (CostService names, `reservations/{id}`). A worker that dies mid-call leaves
-- them here; whoever closes or takes over its attempt (the reaper, the next
-- claim) releases them, so a dead worker's hold does not keep the budget
-- reserved until the reservation's ttl.
ALTER TABLE task.tasks ADD COLUMN held_reservations text[] NOT NULL DEFAULT '{}';
-- The few tasks holding any, for the sweep of holds a dead attempt left behind.
CREATE INDEX tasks_holding_reservations ON task.tasks (id) WHERE held_reservations <> '{}';
