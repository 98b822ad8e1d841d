-- Named queries of CostService (`-- name: x` blocks), called by services/cost/store.py.
-- The hot path (reserve, commit, release, record usage, charge, sweep) is the
-- functions in migrations/ (0001, 0003); the queries calling them are at the end.

-- name: all_prices
SELECT * FROM cost.prices ORDER BY model, version;

-- name: lock_price_model
SELECT pg_advisory_xact_lock(hashtextextended('cost.prices:' || $1, 0));

-- name: insert_price
INSERT INTO cost.prices (model, version, currency_code, input_micros_per_mtok,
  output_micros_per_mtok, cached_input_micros_per_mtok, cache_write_micros_per_mtok,
  long_context_threshold_tokens, long_context_input_micros_per_mtok,
  long_context_output_micros_per_mtok, effective_from)
SELECT $1, coalesce((SELECT max(version) FROM cost.prices WHERE model = $1), 0) + 1,
  $2, $3, $4, $5, $6, $7, $8, $9, $10
ON CONFLICT (model, effective_from) DO NOTHING
RETURNING *;

-- name: price_at_effective_from
SELECT * FROM cost.prices WHERE model = $1 AND effective_from = $2;

-- name: current_prices_page
-- The version in effect at $1 of every model after $2 (keyset on model).
SELECT DISTINCT ON (model) * FROM cost.prices
WHERE effective_from <= $1 AND model > $2
ORDER BY model, effective_from DESC
LIMIT $3;

-- name: price_history_page
SELECT * FROM cost.prices
WHERE (model, version) > ($1, $2)
ORDER BY model, version
LIMIT $3;

-- name: create_budget
INSERT INTO cost.budgets (tenant_id, id, display_name, scope_kind, scope_id, period,
  hard_limit_micros, soft_limit_micros, alert_thresholds, request_id, request_hash,
  create_time, update_time)
VALUES (current_setting('app.tenant_id'), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: budget_by_id
SELECT * FROM cost.budgets WHERE id = $1;

-- name: budget_by_request_id
SELECT * FROM cost.budgets WHERE request_id = $1;

-- name: budget_spend
-- Committed spend of budgets in the period containing "now" ($2: period starts by Period).
SELECT b.pk, coalesce(s.spent_micros, 0) AS spent_micros
FROM cost.budgets b
LEFT JOIN cost.budget_spend s ON s.budget_pk = b.pk AND s.period_start = ($2::timestamptz[])[b.period]
WHERE b.pk = ANY($1::bigint[]);

-- name: budgets_page
SELECT * FROM cost.budgets WHERE id > $1 ORDER BY id LIMIT $2;

-- name: lock_budget
SELECT * FROM cost.budgets WHERE id = $1 FOR UPDATE;

-- name: update_budget
UPDATE cost.budgets SET display_name = $2, period = $3, hard_limit_micros = $4,
  soft_limit_micros = $5, alert_thresholds = $6, revision = revision + 1, update_time = $7
WHERE id = $1
RETURNING *;

-- name: recount_budget_spend
-- After a period change: the budget's spend in its (new) current period starting
-- at $2, counted again from the usage records it applies to that were recorded
-- since the budget exists. Runs with the budget row locked (no concurrent spend).
INSERT INTO cost.budget_spend AS s (tenant_id, budget_pk, period_start, spent_micros)
SELECT b.tenant_id, b.pk, $2, coalesce(sum(u.amount_micros), 0)
FROM cost.budgets b
LEFT JOIN cost.usage_records u
  ON u.usage_time >= $2 AND u.create_time >= b.create_time
 AND (b.scope_kind = 1
      OR (b.scope_kind = 2 AND u.user_id = b.scope_id)
      OR (b.scope_kind = 3 AND u.api_key_id = b.scope_id)
      OR (b.scope_kind = 4 AND u.task = b.scope_id))
WHERE b.pk = $1
GROUP BY b.tenant_id, b.pk
ON CONFLICT (budget_pk, period_start) DO UPDATE SET spent_micros = excluded.spent_micros;

-- name: delete_budget
-- The budget's spend counters and alerts go with it (ON DELETE CASCADE); active
-- reservations keep its pk in `budget_pks`, which no longer matches a row, so
-- their hold on it is simply gone.
DELETE FROM cost.budgets WHERE id = $1;

-- name: reservation_by_id
SELECT r, u FROM cost.reservations r
LEFT JOIN cost.usage_records u ON u.tenant_id = r.tenant_id AND u.id = r.usage_id
WHERE r.id = $1;

-- name: usage_page
-- Newest first; keyset on (usage_time, id) descending; $1/$2 the time range.
SELECT * FROM cost.usage_records
WHERE usage_time >= $1 AND usage_time < $2 AND (usage_time, id) < ($3, $4)
ORDER BY usage_time DESC, id DESC
LIMIT $5;

-- name: export_page
-- Oldest first; keyset on (usage_time, id).
SELECT * FROM cost.usage_records
WHERE usage_time >= $1 AND usage_time < $2 AND (usage_time, id) > ($3, $4)
ORDER BY usage_time, id
LIMIT $5;

-- name: spend_report
-- $3 is the GroupBy number: 1 model, 2 user, 3 API key, 4 task, 5 UTC day.
SELECT CASE $3::int
         WHEN 1 THEN model
         WHEN 2 THEN user_id
         WHEN 3 THEN api_key_id
         WHEN 4 THEN task
         ELSE to_char(usage_time AT TIME ZONE 'UTC', 'YYYY-MM-DD')
       END AS key,
       count(*) AS record_count,
       sum(input_tokens)::bigint AS input_tokens,
       sum(output_tokens)::bigint AS output_tokens,
       sum(cached_input_tokens)::bigint AS cached_input_tokens,
       sum(cache_write_tokens)::bigint AS cache_write_tokens,
       sum(amount_micros)::bigint AS amount_micros
FROM cost.usage_records
WHERE usage_time >= $1 AND usage_time < $2
GROUP BY 1
ORDER BY 1;

-- name: spend_events_after
SELECT e.sequence, e.event_time, u, a
FROM cost.spend_events e
LEFT JOIN cost.usage_records u ON u.tenant_id = e.tenant_id AND u.id = e.usage_id
LEFT JOIN cost.budget_alerts a ON a.id = e.alert_id
WHERE e.sequence > $1
ORDER BY e.sequence
LIMIT $2;

-- name: get_tier
SELECT * FROM cost.tenant_tiers WHERE tenant_id = current_setting('app.tenant_id');

-- name: upsert_tier
INSERT INTO cost.tenant_tiers (tenant_id, tier, update_time)
VALUES (current_setting('app.tenant_id'), $1, $2)
ON CONFLICT (tenant_id) DO UPDATE SET tier = excluded.tier, update_time = excluded.update_time
RETURNING *;

-- name: upsert_tier_budget
-- The tier's monthly hard budget `budgets/tier`: created, or its limit updated.
INSERT INTO cost.budgets AS b (tenant_id, id, display_name, scope_kind, scope_id, period,
  hard_limit_micros, alert_thresholds, create_time, update_time)
VALUES (current_setting('app.tenant_id'), $1, $2, 1, '', 2, $3, $4, $5, $5)
ON CONFLICT (tenant_id, id) DO UPDATE
  SET hard_limit_micros = excluded.hard_limit_micros, display_name = excluded.display_name,
      revision = b.revision + 1, update_time = excluded.update_time;

-- name: all_tiers
SELECT tenant_id, tier FROM cost.tenant_tiers;

-- name: reserve
SELECT * FROM cost.reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);

-- name: commit_reservation
SELECT * FROM cost.commit_reservation($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15);

-- name: release_reservation
SELECT * FROM cost.release_reservation($1, $2, $3);

-- name: record_usage
SELECT * FROM cost.record_usage($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19);

-- name: charge
SELECT * FROM cost.charge($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18);

-- name: hot_batch
-- Group commit (migrations/0003): several of the calls above, of one tenant, in
-- one statement; $2 is a JSON array of calls, one answer row per call.
SELECT * FROM cost.hot_batch($1, $2::jsonb);

-- name: expire_reservations
SELECT cost.expire_reservations($1, $2);

-- name: outstanding_reservations
-- (sweeper, for a gauge) Live holds across tenants; a range scan of the partial
-- index reservations_active_by_expiry.
SELECT count(*) FROM cost.reservations WHERE state = 1 AND expire_time > $1;
