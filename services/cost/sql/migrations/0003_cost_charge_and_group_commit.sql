-- Charge (reserve + commit in one transaction, for callers that know the actual
-- usage up front) and group commit (several hot-path calls of one tenant in one
-- statement, so one transaction and one WAL flush serve them all).
--
-- Why: every hot-path call locks the budget rows that apply to it until its
-- transaction ends, and with synchronous_commit that includes the WAL flush.
-- Calls of one tenant therefore run one after another, each paying a flush
-- (~3 ms on the development machine): ~150 reserve+commit pairs a second no
-- matter how many callers. A batch pays one flush for all of its calls.
--
-- The rules of each call are unchanged: the batch runs the very functions a
-- lone call runs (reserve, commit_reservation, release_reservation,
-- record_usage, charge), one after another in the order they arrived, so each
-- sees the holds and spend of the ones before it exactly as if they had
-- committed first. The lock order of 0001 holds for the whole batch: it locks
-- the reservations it settles, then every budget any of its calls may touch in
-- ascending pk, before the first call runs.

-- The budgets that apply to an attribution (the tenant's, the user's, the API
-- key's, the task's), locked in pk order: the serialisation point of the
-- hard-limit invariant.
CREATE FUNCTION cost.lock_applicable_budgets(
  p_tenant text, p_user text, p_api_key text, p_task text, OUT pks bigint[], OUT ids text[]
)
  LANGUAGE sql
  AS $$
    SELECT coalesce(array_agg(l.pk), '{}'), coalesce(array_agg(l.id), '{}')
    FROM (
      SELECT b.pk, b.id FROM cost.budgets b
      WHERE b.tenant_id = p_tenant
        AND (b.scope_kind = 1
             OR (b.scope_kind = 2 AND b.scope_id = p_user)
             OR (b.scope_kind = 3 AND p_api_key <> '' AND b.scope_id = p_api_key)
             OR (b.scope_kind = 4 AND p_task <> '' AND b.scope_id = p_task))
      ORDER BY b.pk
      FOR UPDATE
    ) l
  $$;

-- The first budget of `p_pks` (locked by the caller) whose hard limit has no room
-- for `p_amount` on top of its committed spend and holds; no row when all have
-- room. Before refusing, lapsed reservations held only against these budgets are
-- expired on the spot (the rest wait for the sweeper; SKIP LOCKED leaves one
-- being settled right now to that transaction) and the check runs once more.
CREATE FUNCTION cost.budget_without_room(
  p_pks bigint[], p_amount bigint, p_now timestamptz, p_period_starts timestamptz[]
) RETURNS TABLE (budget_id text, limit_micros bigint, used_micros bigint)
  LANGUAGE plpgsql
  AS $$
DECLARE
  full_budget record;
BEGIN
  FOR attempt IN 1..2 LOOP
    SELECT b.id, b.hard_limit_micros, coalesce(s.spent_micros, 0) + b.reserved_micros AS used
    INTO full_budget
    FROM cost.budgets b
    LEFT JOIN cost.budget_spend s
      ON s.budget_pk = b.pk AND s.period_start = p_period_starts[b.period]
    WHERE b.pk = ANY(p_pks) AND b.hard_limit_micros > 0
      AND coalesce(s.spent_micros, 0) + b.reserved_micros + p_amount > b.hard_limit_micros
    ORDER BY b.pk
    LIMIT 1;
    EXIT WHEN NOT FOUND;
    IF attempt = 2 THEN
      RETURN QUERY SELECT full_budget.id, full_budget.hard_limit_micros, full_budget.used;
      RETURN;
    END IF;
    WITH lapsed AS (
      SELECT r.tenant_id, r.id FROM cost.reservations r
      WHERE r.state = 1 AND r.expire_time <= p_now AND r.budget_pks && p_pks
        AND r.budget_pks <@ p_pks
      FOR UPDATE SKIP LOCKED
    ), expired AS (
      UPDATE cost.reservations r SET state = 4, settle_time = p_now
      FROM lapsed WHERE r.tenant_id = lapsed.tenant_id AND r.id = lapsed.id
      RETURNING r.amount_micros, r.budget_pks
    )
    UPDATE cost.budgets b SET reserved_micros = b.reserved_micros - freed.total
    FROM (SELECT held.pk, sum(e.amount_micros) AS total
          FROM expired e CROSS JOIN LATERAL unnest(e.budget_pks) AS held(pk)
          GROUP BY held.pk) freed
    WHERE b.pk = freed.pk;
  END LOOP;
END
$$;

-- Adds recorded spend to the counters of `p_applicable` (budgets the caller has
-- locked) for their periods, fires threshold alerts (once per threshold and
-- period), appends the feed events and notifies watchers.
CREATE FUNCTION cost.add_spend(
  p_tenant text, p_usage_id text, p_applicable bigint[], p_amount bigint,
  p_period_starts timestamptz[], p_now timestamptz
) RETURNS void
  LANGUAGE plpgsql
  AS $$
DECLARE
  alert record;
BEGIN
  IF cardinality(p_applicable) > 0 THEN
    FOR alert IN
      WITH counted AS (
        INSERT INTO cost.budget_spend AS s (tenant_id, budget_pk, period_start, spent_micros)
        SELECT p_tenant, b.pk, p_period_starts[b.period], p_amount
        FROM cost.budgets b WHERE b.pk = ANY(p_applicable)
        ON CONFLICT (budget_pk, period_start)
          DO UPDATE SET spent_micros = s.spent_micros + excluded.spent_micros
        RETURNING s.budget_pk, s.period_start, s.spent_micros
      )
      INSERT INTO cost.budget_alerts AS a (tenant_id, budget_pk, budget_id, period_start,
                                           threshold_percent, spent_micros, limit_micros, fire_time)
      SELECT p_tenant, b.pk, b.id, c.period_start, t.pct, c.spent_micros, lim.micros, p_now
      FROM counted c
      JOIN cost.budgets b ON b.pk = c.budget_pk
      CROSS JOIN LATERAL (SELECT CASE WHEN b.hard_limit_micros > 0 THEN b.hard_limit_micros
                                      ELSE b.soft_limit_micros END AS micros) lim
      CROSS JOIN LATERAL unnest(b.alert_thresholds) AS t(pct)
      WHERE lim.micros > 0 AND c.spent_micros::numeric * 100 >= t.pct::numeric * lim.micros
      ORDER BY b.pk, t.pct
      ON CONFLICT (budget_pk, period_start, threshold_percent) DO NOTHING
      RETURNING a.id
    LOOP
      PERFORM cost.append_spend_event(p_tenant, p_now, NULL, alert.id);
    END LOOP;
  END IF;
  IF p_usage_id IS NOT NULL THEN
    PERFORM cost.append_spend_event(p_tenant, p_now, p_usage_id, NULL);
  END IF;
  PERFORM pg_notify('cost_spend', p_tenant);
END
$$;

-- apply_spend (0001), its counting part now cost.add_spend: locks the budgets
-- that apply to the attribution and those in `p_release_pks` in pk order, gives
-- back the hold of `p_release_amount` on the latter, and adds the spend.
CREATE OR REPLACE FUNCTION cost.apply_spend(
  p_tenant text, p_usage_id text, p_user text, p_api_key text, p_task text,
  p_amount bigint, p_usage_time timestamptz, p_period_starts timestamptz[],
  p_release_pks bigint[], p_release_amount bigint, p_now timestamptz
) RETURNS void
  LANGUAGE plpgsql
  AS $$
DECLARE
  applicable bigint[];
  releasing bigint[];
BEGIN
  SELECT coalesce(array_agg(l.pk) FILTER (WHERE l.releases), '{}'),
         coalesce(array_agg(l.pk) FILTER (WHERE l.applies), '{}')
  INTO releasing, applicable
  FROM (
    SELECT b.pk, (b.scope_kind = 1
                  OR (b.scope_kind = 2 AND b.scope_id = p_user)
                  OR (b.scope_kind = 3 AND p_api_key <> '' AND b.scope_id = p_api_key)
                  OR (b.scope_kind = 4 AND p_task <> '' AND b.scope_id = p_task)) AS applies,
           b.pk = ANY(p_release_pks) AS releases
    FROM cost.budgets b
    WHERE b.tenant_id = p_tenant
      AND (b.pk = ANY(p_release_pks)
           OR b.scope_kind = 1
           OR (b.scope_kind = 2 AND b.scope_id = p_user)
           OR (b.scope_kind = 3 AND p_api_key <> '' AND b.scope_id = p_api_key)
           OR (b.scope_kind = 4 AND p_task <> '' AND b.scope_id = p_task))
    ORDER BY b.pk
    FOR UPDATE
  ) l;

  IF p_release_amount > 0 AND cardinality(releasing) > 0 THEN
    UPDATE cost.budgets SET reserved_micros = reserved_micros - p_release_amount
    WHERE pk = ANY(releasing);
  END IF;
  PERFORM cost.add_spend(p_tenant, p_usage_id, applicable, p_amount, p_period_starts, p_now);
END
$$;

-- Reserve (0001) on the shared helpers; same outcomes.
CREATE OR REPLACE FUNCTION cost.reserve(
  p_tenant text, p_id text, p_request_id text, p_request_hash bytea, p_amount bigint,
  p_user text, p_api_key text, p_task text, p_now timestamptz, p_expire timestamptz,
  p_period_starts timestamptz[]
) RETURNS TABLE (outcome text, reservation cost.reservations, budget_id text,
                 limit_micros bigint, used_micros bigint)
  LANGUAGE plpgsql
  AS $$
DECLARE
  locked record;
  full_budget record;
  found_row cost.reservations;
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  IF p_request_id IS NOT NULL THEN
    SELECT r.* INTO found_row FROM cost.reservations r
    WHERE r.tenant_id = p_tenant AND r.request_id = p_request_id;
    IF FOUND THEN
      RETURN QUERY SELECT 'replayed'::text, found_row, NULL::text, NULL::bigint, NULL::bigint;
      RETURN;
    END IF;
  END IF;

  SELECT l.pks, l.ids INTO locked
  FROM cost.lock_applicable_budgets(p_tenant, p_user, p_api_key, p_task) l;
  SELECT f.budget_id, f.limit_micros, f.used_micros INTO full_budget
  FROM cost.budget_without_room(locked.pks, p_amount, p_now, p_period_starts) f;
  IF FOUND THEN
    RETURN QUERY SELECT 'exhausted'::text, NULL::cost.reservations, full_budget.budget_id,
                        full_budget.limit_micros, full_budget.used_micros;
    RETURN;
  END IF;

  INSERT INTO cost.reservations AS r (tenant_id, id, request_id, request_hash, amount_micros,
                                      user_id, api_key_id, task, budget_pks, budget_ids,
                                      expire_time, create_time)
  VALUES (p_tenant, p_id, p_request_id, p_request_hash, p_amount, p_user, p_api_key, p_task,
          locked.pks, locked.ids, p_expire, p_now)
  ON CONFLICT (tenant_id, request_id) DO NOTHING
  RETURNING r.* INTO found_row;
  IF NOT FOUND THEN  -- a concurrent Reserve with the same request id won
    SELECT r.* INTO found_row FROM cost.reservations r
    WHERE r.tenant_id = p_tenant AND r.request_id = p_request_id;
    RETURN QUERY SELECT 'replayed'::text, found_row, NULL::text, NULL::bigint, NULL::bigint;
    RETURN;
  END IF;
  IF p_amount > 0 THEN
    UPDATE cost.budgets SET reserved_micros = reserved_micros + p_amount
    WHERE pk = ANY(locked.pks);
  END IF;
  RETURN QUERY SELECT 'reserved'::text, found_row, NULL::text, NULL::bigint, NULL::bigint;
END
$$;

-- Charge: 'charged' (with the record), 'replayed' (key seen: the earlier record;
-- the caller compares hashes), 'exhausted' (the first budget whose hard limit has
-- no room for the amount: id, limit, committed + held) or 'price_changed'. The
-- room check is Reserve's; the record and the spend are Commit's, without a hold
-- to give back. `p_key` is the usage record's idempotency key.
CREATE FUNCTION cost.charge(
  p_tenant text, p_usage_id text, p_key text, p_request_hash bytea, p_model text,
  p_input bigint, p_output bigint, p_cached bigint, p_cache_write bigint, p_provenance smallint,
  p_user text, p_api_key text, p_task text, p_amount bigint, p_currency text,
  p_price_version integer, p_now timestamptz, p_period_starts timestamptz[]
) RETURNS TABLE (outcome text, usage cost.usage_records, budget_id text, limit_micros bigint,
                 used_micros bigint)
  LANGUAGE plpgsql
  AS $$
DECLARE
  u cost.usage_records;
  applicable bigint[];
  full_budget record;
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  SELECT x.* INTO u FROM cost.usage_records x
  WHERE x.tenant_id = p_tenant AND x.idempotency_key = p_key;
  IF FOUND THEN
    RETURN QUERY SELECT 'replayed'::text, u, NULL::text, NULL::bigint, NULL::bigint;
    RETURN;
  END IF;
  IF cost.price_version_at(p_model, p_now) IS DISTINCT FROM p_price_version THEN
    RETURN QUERY SELECT 'price_changed'::text, NULL::cost.usage_records, NULL::text,
                        NULL::bigint, NULL::bigint;
    RETURN;
  END IF;

  SELECT l.pks INTO applicable
  FROM cost.lock_applicable_budgets(p_tenant, p_user, p_api_key, p_task) l;
  SELECT f.budget_id, f.limit_micros, f.used_micros INTO full_budget
  FROM cost.budget_without_room(applicable, p_amount, p_now, p_period_starts) f;
  IF FOUND THEN
    -- A concurrent charge with this key may be what filled the budget: it answers.
    SELECT x.* INTO u FROM cost.usage_records x
    WHERE x.tenant_id = p_tenant AND x.idempotency_key = p_key;
    IF FOUND THEN
      RETURN QUERY SELECT 'replayed'::text, u, NULL::text, NULL::bigint, NULL::bigint;
      RETURN;
    END IF;
    RETURN QUERY SELECT 'exhausted'::text, NULL::cost.usage_records, full_budget.budget_id,
                        full_budget.limit_micros, full_budget.used_micros;
    RETURN;
  END IF;

  INSERT INTO cost.usage_records AS x (tenant_id, id, idempotency_key, request_hash, model,
    input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, provenance, user_id,
    api_key_id, task, usage_time, amount_micros, currency_code, price_version)
  VALUES (p_tenant, p_usage_id, p_key, p_request_hash, p_model, p_input, p_output, p_cached,
    p_cache_write, p_provenance, p_user, p_api_key, p_task, p_now, p_amount, p_currency,
    p_price_version)
  ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
  RETURNING x.* INTO u;
  IF NOT FOUND THEN  -- a concurrent charge with the same key won
    SELECT x.* INTO u FROM cost.usage_records x
    WHERE x.tenant_id = p_tenant AND x.idempotency_key = p_key;
    RETURN QUERY SELECT 'replayed'::text, u, NULL::text, NULL::bigint, NULL::bigint;
    RETURN;
  END IF;
  PERFORM cost.add_spend(p_tenant, p_usage_id, applicable, p_amount, p_period_starts, p_now);
  RETURN QUERY SELECT 'charged'::text, u, NULL::text, NULL::bigint, NULL::bigint;
END
$$;

-- Group commit: the hot-path calls of one tenant (`p_ops`, a JSON array of
-- objects with the fields named in the column list below; `n` numbers them) in
-- one statement. Answers one row per call, `n` saying which, with the columns
-- of every kind's answer (those a kind does not have are NULL). Kinds:
-- reserve, commit, release, record (RecordUsage) and charge.
CREATE FUNCTION cost.hot_batch(p_tenant text, p_ops jsonb)
  RETURNS TABLE (n integer, outcome text, reservation cost.reservations,
                 usage cost.usage_records, budget_id text, limit_micros bigint,
                 used_micros bigint)
  LANGUAGE plpgsql
  AS $$
DECLARE
  op record;
  settling text[];
  users text[];
  api_keys text[];
  tasks text[];
  held bigint[];
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);

  -- The lock order of 0001 for the whole batch: the reservations it settles (by
  -- id), then every budget any call may touch (by pk). Each call locks its own
  -- again (already held: no wait), so locks are never taken out of order.
  SELECT coalesce(array_agg(o.id) FILTER (WHERE o.kind IN ('commit', 'release')), '{}'),
         coalesce(array_agg(o.user_id) FILTER (WHERE o.user_id IS NOT NULL), '{}'),
         coalesce(array_agg(o.api_key_id) FILTER (WHERE o.api_key_id <> ''), '{}'),
         coalesce(array_agg(o.task) FILTER (WHERE o.task <> ''), '{}')
  INTO settling, users, api_keys, tasks
  FROM jsonb_to_recordset(p_ops) AS o(kind text, id text, user_id text, api_key_id text,
                                      task text);
  IF cardinality(settling) > 0 THEN
    SELECT users || coalesce(array_agg(r.user_id), '{}'),
           api_keys || coalesce(array_agg(r.api_key_id) FILTER (WHERE r.api_key_id <> ''), '{}'),
           tasks || coalesce(array_agg(r.task) FILTER (WHERE r.task <> ''), '{}')
    INTO users, api_keys, tasks
    FROM (SELECT x.user_id, x.api_key_id, x.task FROM cost.reservations x
          WHERE x.tenant_id = p_tenant AND x.id = ANY(settling)
          ORDER BY x.id
          FOR UPDATE) r;
    SELECT coalesce(array_agg(DISTINCT h.pk), '{}') INTO held
    FROM cost.reservations x CROSS JOIN LATERAL unnest(x.budget_pks) AS h(pk)
    WHERE x.tenant_id = p_tenant AND x.id = ANY(settling);
  END IF;
  PERFORM 1 FROM cost.budgets b
  WHERE b.tenant_id = p_tenant
    AND (b.scope_kind = 1
         OR b.pk = ANY(held)
         OR (b.scope_kind = 2 AND b.scope_id = ANY(users))
         OR (b.scope_kind = 3 AND b.scope_id = ANY(api_keys))
         OR (b.scope_kind = 4 AND b.scope_id = ANY(tasks)))
  ORDER BY b.pk
  FOR UPDATE;

  FOR op IN
    SELECT * FROM jsonb_to_recordset(p_ops) AS o(
      n integer, kind text, id text, usage_id text, key text, request_hash text,
      amount bigint, user_id text, api_key_id text, task text, model text,
      input_tokens bigint, output_tokens bigint, cached_input_tokens bigint,
      cache_write_tokens bigint, provenance smallint, currency_code text,
      price_version integer, now_time timestamptz, expire_time timestamptz,
      usage_time timestamptz, period_starts timestamptz[])
    ORDER BY o.n
  LOOP
    CASE op.kind
      WHEN 'reserve' THEN
        RETURN QUERY SELECT op.n, x.outcome, x.reservation, NULL::cost.usage_records,
                            x.budget_id, x.limit_micros, x.used_micros
        FROM cost.reserve(p_tenant, op.id, op.key, decode(op.request_hash, 'hex'), op.amount,
                          op.user_id, op.api_key_id, op.task, op.now_time, op.expire_time,
                          op.period_starts) x;
      WHEN 'commit' THEN
        RETURN QUERY SELECT op.n, x.outcome, x.reservation, x.usage, NULL::text,
                            NULL::bigint, NULL::bigint
        FROM cost.commit_reservation(p_tenant, op.id, op.usage_id,
                                     decode(op.request_hash, 'hex'), op.model, op.input_tokens,
                                     op.output_tokens, op.cached_input_tokens,
                                     op.cache_write_tokens, op.provenance, op.amount,
                                     op.currency_code, op.price_version, op.now_time,
                                     op.period_starts) x;
      WHEN 'release' THEN
        RETURN QUERY SELECT op.n, x.outcome, x.reservation, NULL::cost.usage_records,
                            NULL::text, NULL::bigint, NULL::bigint
        FROM cost.release_reservation(p_tenant, op.id, op.now_time) x;
      WHEN 'record' THEN
        RETURN QUERY SELECT op.n, x.outcome, NULL::cost.reservations, x.usage, NULL::text,
                            NULL::bigint, NULL::bigint
        FROM cost.record_usage(p_tenant, op.usage_id, op.key, decode(op.request_hash, 'hex'),
                               op.model, op.input_tokens, op.output_tokens,
                               op.cached_input_tokens, op.cache_write_tokens, op.provenance,
                               op.user_id, op.api_key_id, op.task, op.usage_time, op.amount,
                               op.currency_code, op.price_version, op.period_starts,
                               op.now_time) x;
      WHEN 'charge' THEN
        RETURN QUERY SELECT op.n, x.outcome, NULL::cost.reservations, x.usage, x.budget_id,
                            x.limit_micros, x.used_micros
        FROM cost.charge(p_tenant, op.usage_id, op.key, decode(op.request_hash, 'hex'),
                         op.model, op.input_tokens, op.output_tokens, op.cached_input_tokens,
                         op.cache_write_tokens, op.provenance, op.user_id, op.api_key_id,
                         op.task, op.amount, op.currency_code, op.price_version, op.now_time,
                         op.period_starts) x;
    END CASE;
  END LOOP;
END
$$;
