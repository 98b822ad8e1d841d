-- CostService schema: the price book, metered usage, budgets with their spend
-- counters, reservations, alerts, the per-tenant spend feed and tenant tiers.
--
-- Money is bigint micro-units everywhere. Tenant tables carry `tenant_id` and
-- FORCE ROW LEVEL SECURITY on `app.tenant_id`; the reservation sweeper and the
-- rate limiter's tier cache read across tenants only in transactions that set
-- `app.cost_sweeper = on` / `app.cost_tiers = on` (the service does that solely
-- in its own background loops).
--
-- Lock order (deadlock freedom): reservation rows first, then budget rows in
-- ascending `pk`, then the tenant's feed head. Reserve takes budgets only (and
-- reservations with SKIP LOCKED, which never waits).
CREATE SCHEMA IF NOT EXISTS cost;

-- Price versions, global (no tenant). Written only through UpsertPrice
-- (cost:admin) and the start-up load of the default price book.
CREATE TABLE cost.prices (
  model                               text        NOT NULL,
  version                             integer     NOT NULL CHECK (version > 0),
  currency_code                       text        NOT NULL DEFAULT 'USD',
  input_micros_per_mtok               bigint      NOT NULL DEFAULT 0 CHECK (input_micros_per_mtok >= 0),
  output_micros_per_mtok              bigint      NOT NULL DEFAULT 0 CHECK (output_micros_per_mtok >= 0),
  cached_input_micros_per_mtok        bigint      NOT NULL DEFAULT 0 CHECK (cached_input_micros_per_mtok >= 0),
  cache_write_micros_per_mtok         bigint      NOT NULL DEFAULT 0 CHECK (cache_write_micros_per_mtok >= 0),
  long_context_threshold_tokens       bigint      NOT NULL DEFAULT 0 CHECK (long_context_threshold_tokens >= 0),
  long_context_input_micros_per_mtok  bigint      NOT NULL DEFAULT 0 CHECK (long_context_input_micros_per_mtok >= 0),
  long_context_output_micros_per_mtok bigint      NOT NULL DEFAULT 0 CHECK (long_context_output_micros_per_mtok >= 0),
  effective_from                      timestamptz NOT NULL,
  create_time                         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model, version),
  CONSTRAINT prices_model_effective_from_key UNIQUE (model, effective_from)
);

-- Budgets. `pk` orders row locks; `(tenant_id, id)` is the resource identity.
-- `reserved_micros` is the maintained sum of the active reservations holding
-- against the budget; spend lives in `budget_spend`, one row per period.
CREATE TABLE cost.budgets (
  pk                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id         text        NOT NULL,
  id                text        NOT NULL,
  display_name      text        NOT NULL DEFAULT '',
  scope_kind        smallint    NOT NULL CHECK (scope_kind BETWEEN 1 AND 4),  -- ScopeKind
  scope_id          text        NOT NULL DEFAULT '',
  period            smallint    NOT NULL CHECK (period BETWEEN 1 AND 3),      -- Period
  hard_limit_micros bigint      NOT NULL DEFAULT 0 CHECK (hard_limit_micros >= 0),
  soft_limit_micros bigint      NOT NULL DEFAULT 0 CHECK (soft_limit_micros >= 0),
  alert_thresholds  integer[]   NOT NULL DEFAULT '{}',
  reserved_micros   bigint      NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
  revision          bigint      NOT NULL DEFAULT 1,  -- bumped by configuration changes (etag)
  create_time       timestamptz NOT NULL DEFAULT now(),
  update_time       timestamptz NOT NULL DEFAULT now(),
  request_id        text,
  request_hash      bytea,
  CONSTRAINT budgets_id_key UNIQUE (tenant_id, id),
  CONSTRAINT budgets_request_id_key UNIQUE (tenant_id, request_id)
);
CREATE INDEX budgets_by_scope ON cost.budgets (tenant_id, scope_kind, scope_id);

-- Committed spend per budget and period (`period_start` from the budget's
-- period at the usage time). Maintained in the transaction that records usage.
CREATE TABLE cost.budget_spend (
  tenant_id    text        NOT NULL,
  budget_pk    bigint      NOT NULL REFERENCES cost.budgets (pk) ON DELETE CASCADE,
  period_start timestamptz NOT NULL,
  spent_micros bigint      NOT NULL DEFAULT 0,
  PRIMARY KEY (budget_pk, period_start)
);

-- Reservations. state: 1 active, 2 committed, 3 released, 4 expired
-- (ReservationState numbers). `budget_pks` are the budgets it holds against.
CREATE TABLE cost.reservations (
  tenant_id     text        NOT NULL,
  id            text        NOT NULL,
  request_id    text,
  request_hash  bytea,
  amount_micros bigint      NOT NULL CHECK (amount_micros >= 0),
  user_id       text        NOT NULL DEFAULT '',
  api_key_id    text        NOT NULL DEFAULT '',
  task          text        NOT NULL DEFAULT '',
  budget_pks    bigint[]    NOT NULL DEFAULT '{}',
  budget_ids    text[]      NOT NULL DEFAULT '{}',
  state         smallint    NOT NULL DEFAULT 1 CHECK (state BETWEEN 1 AND 4),
  expire_time   timestamptz NOT NULL,
  create_time   timestamptz NOT NULL,
  settle_time   timestamptz,
  usage_id      text,
  PRIMARY KEY (tenant_id, id),
  CONSTRAINT reservations_request_id_key UNIQUE (tenant_id, request_id)
);
CREATE INDEX reservations_active_by_expiry ON cost.reservations (expire_time) WHERE state = 1;

-- Usage records. The idempotency key is claimed by the UNIQUE constraint in the
-- same transaction as the spend it causes.
CREATE TABLE cost.usage_records (
  tenant_id           text        NOT NULL,
  id                  text        NOT NULL,
  idempotency_key     text        NOT NULL,
  request_hash        bytea       NOT NULL,
  model               text        NOT NULL,
  input_tokens        bigint      NOT NULL DEFAULT 0,
  output_tokens       bigint      NOT NULL DEFAULT 0,
  cached_input_tokens bigint      NOT NULL DEFAULT 0,
  cache_write_tokens  bigint      NOT NULL DEFAULT 0,
  provenance          smallint    NOT NULL DEFAULT 1,
  user_id             text        NOT NULL DEFAULT '',
  api_key_id          text        NOT NULL DEFAULT '',
  task                text        NOT NULL DEFAULT '',
  usage_time          timestamptz NOT NULL,
  amount_micros       bigint      NOT NULL CHECK (amount_micros >= 0),
  currency_code       text        NOT NULL,
  price_version       integer     NOT NULL,
  reservation_id      text,
  over_estimate       boolean     NOT NULL DEFAULT false,
  create_time         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  CONSTRAINT usage_records_idempotency_key UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX usage_records_by_time ON cost.usage_records (tenant_id, usage_time, id);

-- Threshold alerts: at most one per budget, period and threshold.
CREATE TABLE cost.budget_alerts (
  tenant_id         text        NOT NULL,
  id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  budget_pk         bigint      NOT NULL REFERENCES cost.budgets (pk) ON DELETE CASCADE,
  budget_id         text        NOT NULL,
  period_start      timestamptz NOT NULL,
  threshold_percent integer     NOT NULL,
  spent_micros      bigint      NOT NULL,
  limit_micros      bigint      NOT NULL,
  fire_time         timestamptz NOT NULL,
  CONSTRAINT budget_alerts_once UNIQUE (budget_pk, period_start, threshold_percent)
);

-- The spend feed (WatchSpend): per-tenant gap-free sequence. The head row is
-- locked from drawing a number to commit, so numbers become visible in order.
CREATE TABLE cost.spend_feed_heads (
  tenant_id     text   PRIMARY KEY,
  last_sequence bigint NOT NULL
);

CREATE TABLE cost.spend_events (
  tenant_id  text        NOT NULL,
  sequence   bigint      NOT NULL,
  event_time timestamptz NOT NULL,
  usage_id   text,
  alert_id   bigint,
  PRIMARY KEY (tenant_id, sequence)
);

-- Tenant tiers (free/pro/enterprise); no row = no tier (not rate limited).
CREATE TABLE cost.tenant_tiers (
  tenant_id   text        PRIMARY KEY,
  tier        text        NOT NULL,
  update_time timestamptz NOT NULL DEFAULT now()
);

-- Row-level security.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['budgets', 'budget_spend', 'reservations', 'usage_records',
                           'budget_alerts', 'spend_feed_heads', 'spend_events', 'tenant_tiers']
  LOOP
    EXECUTE format('ALTER TABLE cost.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE cost.%I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON cost.%I '
      'USING (tenant_id = current_setting(''app.tenant_id'', true)) '
      'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
  END LOOP;
END
$$;

-- The reservation sweeper (all tenants): expires reservations, gives the
-- budgets their holds back.
CREATE POLICY sweeper ON cost.reservations
  USING (current_setting('app.cost_sweeper', true) = 'on');
CREATE POLICY sweeper ON cost.budgets
  USING (current_setting('app.cost_sweeper', true) = 'on');
-- The rate limiter's tier cache (all tenants, read only).
CREATE POLICY tier_cache ON cost.tenant_tiers FOR SELECT
  USING (current_setting('app.cost_tiers', true) = 'on');

-- ---------------------------------------------------------------------------
-- The hot path as functions: each RPC is one statement, one round trip, so
-- budget row locks are held for microseconds. Amounts are rated by the caller
-- (services/cost/money.py, the one rating rule); the functions only check that
-- the price version it used is the one in effect.
-- ---------------------------------------------------------------------------

-- The price version in effect for `p_model` at `p_at`, or NULL.
CREATE FUNCTION cost.price_version_at(p_model text, p_at timestamptz) RETURNS integer
  LANGUAGE sql STABLE
  AS $$
    SELECT version FROM cost.prices
    WHERE model = p_model AND effective_from <= p_at
    ORDER BY effective_from DESC LIMIT 1
  $$;

-- Appends one spend event to the tenant's feed; returns its sequence.
CREATE FUNCTION cost.append_spend_event(
  p_tenant text, p_time timestamptz, p_usage_id text, p_alert_id bigint
) RETURNS bigint
  LANGUAGE plpgsql
  AS $$
DECLARE
  seq bigint;
BEGIN
  INSERT INTO cost.spend_feed_heads AS h (tenant_id, last_sequence) VALUES (p_tenant, 1)
  ON CONFLICT (tenant_id) DO UPDATE SET last_sequence = h.last_sequence + 1
  RETURNING h.last_sequence INTO seq;
  INSERT INTO cost.spend_events (tenant_id, sequence, event_time, usage_id, alert_id)
  VALUES (p_tenant, seq, p_time, p_usage_id, p_alert_id);
  RETURN seq;
END
$$;

-- Applies recorded spend: locks the budgets that apply to the attribution (and
-- those in `p_release_pks`, whose hold of `p_release_amount` it gives back) in
-- pk order, adds the amount to each applicable budget's counter for the period
-- of `p_usage_time`, fires threshold alerts (once per threshold and period),
-- appends the feed events and notifies watchers.
CREATE FUNCTION cost.apply_spend(
  p_tenant text, p_usage_id text, p_user text, p_api_key text, p_task text,
  p_amount bigint, p_usage_time timestamptz, p_period_starts timestamptz[],
  p_release_pks bigint[], p_release_amount bigint, p_now timestamptz
) RETURNS void
  LANGUAGE plpgsql
  AS $$
DECLARE
  applicable bigint[];
  releasing bigint[];
  alert record;
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

  IF cardinality(applicable) > 0 THEN
    FOR alert IN
      WITH counted AS (
        INSERT INTO cost.budget_spend AS s (tenant_id, budget_pk, period_start, spent_micros)
        SELECT p_tenant, b.pk, p_period_starts[b.period], p_amount
        FROM cost.budgets b WHERE b.pk = ANY(applicable)
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

-- Reserve: outcome 'reserved' (with the row), 'replayed' (request id seen:
-- the earlier row; the caller compares hashes) or 'exhausted' (the first budget
-- whose hard limit has no room: id, limit, committed + held).
CREATE FUNCTION cost.reserve(
  p_tenant text, p_id text, p_request_id text, p_request_hash bytea, p_amount bigint,
  p_user text, p_api_key text, p_task text, p_now timestamptz, p_expire timestamptz,
  p_period_starts timestamptz[]
) RETURNS TABLE (outcome text, reservation cost.reservations, budget_id text,
                 limit_micros bigint, used_micros bigint)
  LANGUAGE plpgsql
  AS $$
DECLARE
  pks bigint[];
  ids text[];
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

  -- Lock every applicable budget, in pk order (the invariant's serialisation point).
  SELECT coalesce(array_agg(l.pk), '{}'), coalesce(array_agg(l.id), '{}') INTO pks, ids
  FROM (
    SELECT b.pk, b.id FROM cost.budgets b
    WHERE b.tenant_id = p_tenant
      AND (b.scope_kind = 1
           OR (b.scope_kind = 2 AND b.scope_id = p_user)
           OR (b.scope_kind = 3 AND p_api_key <> '' AND b.scope_id = p_api_key)
           OR (b.scope_kind = 4 AND p_task <> '' AND b.scope_id = p_task))
    ORDER BY b.pk
    FOR UPDATE
  ) l;

  FOR attempt IN 1..2 LOOP
    SELECT b.id, b.hard_limit_micros, coalesce(s.spent_micros, 0) + b.reserved_micros AS used
    INTO full_budget
    FROM cost.budgets b
    LEFT JOIN cost.budget_spend s
      ON s.budget_pk = b.pk AND s.period_start = p_period_starts[b.period]
    WHERE b.pk = ANY(pks) AND b.hard_limit_micros > 0
      AND coalesce(s.spent_micros, 0) + b.reserved_micros + p_amount > b.hard_limit_micros
    ORDER BY b.pk
    LIMIT 1;
    EXIT WHEN NOT FOUND;
    IF attempt = 2 THEN
      RETURN QUERY SELECT 'exhausted'::text, NULL::cost.reservations, full_budget.id,
                          full_budget.hard_limit_micros, full_budget.used;
      RETURN;
    END IF;
    -- No room: expire (right here) the lapsed reservations whose budgets we all
    -- hold locked; the rest wait for the sweeper. SKIP LOCKED: one being
    -- committed or released right now is left to that transaction.
    WITH lapsed AS (
      SELECT r.tenant_id, r.id FROM cost.reservations r
      WHERE r.state = 1 AND r.expire_time <= p_now AND r.budget_pks && pks AND r.budget_pks <@ pks
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

  INSERT INTO cost.reservations AS r (tenant_id, id, request_id, request_hash, amount_micros,
                                      user_id, api_key_id, task, budget_pks, budget_ids,
                                      expire_time, create_time)
  VALUES (p_tenant, p_id, p_request_id, p_request_hash, p_amount, p_user, p_api_key, p_task,
          pks, ids, p_expire, p_now)
  ON CONFLICT (tenant_id, request_id) DO NOTHING
  RETURNING r.* INTO found_row;
  IF NOT FOUND THEN  -- a concurrent Reserve with the same request id won
    SELECT r.* INTO found_row FROM cost.reservations r
    WHERE r.tenant_id = p_tenant AND r.request_id = p_request_id;
    RETURN QUERY SELECT 'replayed'::text, found_row, NULL::text, NULL::bigint, NULL::bigint;
    RETURN;
  END IF;
  IF p_amount > 0 THEN
    UPDATE cost.budgets SET reserved_micros = reserved_micros + p_amount WHERE pk = ANY(pks);
  END IF;
  RETURN QUERY SELECT 'reserved'::text, found_row, NULL::text, NULL::bigint, NULL::bigint;
END
$$;

-- Gives back the hold of reservation `r` (locked by the caller) and sets its state.
CREATE FUNCTION cost.unhold(r cost.reservations, p_state smallint, p_now timestamptz)
  RETURNS cost.reservations
  LANGUAGE plpgsql
  AS $$
DECLARE
  out_row cost.reservations;
BEGIN
  PERFORM 1 FROM cost.budgets b WHERE b.pk = ANY(r.budget_pks) ORDER BY b.pk FOR UPDATE;
  IF r.amount_micros > 0 THEN
    UPDATE cost.budgets SET reserved_micros = reserved_micros - r.amount_micros
    WHERE pk = ANY(r.budget_pks);
  END IF;
  UPDATE cost.reservations x SET state = p_state, settle_time = p_now
  WHERE x.tenant_id = r.tenant_id AND x.id = r.id
  RETURNING x.* INTO out_row;
  RETURN out_row;
END
$$;

-- Release: 'released', or 'settled' with the row unchanged when not active.
CREATE FUNCTION cost.release_reservation(p_tenant text, p_id text, p_now timestamptz)
  RETURNS TABLE (outcome text, reservation cost.reservations)
  LANGUAGE plpgsql
  AS $$
DECLARE
  r cost.reservations;
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  SELECT x.* INTO r FROM cost.reservations x WHERE x.tenant_id = p_tenant AND x.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found'::text, NULL::cost.reservations;
    RETURN;
  END IF;
  IF r.state <> 1 THEN
    RETURN QUERY SELECT 'settled'::text, r;
    RETURN;
  END IF;
  RETURN QUERY SELECT 'released'::text, cost.unhold(r, 3::smallint, p_now);
END
$$;

-- Commit: 'committed' (with the record), 'settled' (not active: unchanged),
-- 'expired' (its ttl passed: now expired, nothing recorded), 'not_found', or
-- 'price_changed' (rated with a version no longer in effect: rate again).
CREATE FUNCTION cost.commit_reservation(
  p_tenant text, p_id text, p_usage_id text, p_request_hash bytea, p_model text,
  p_input bigint, p_output bigint, p_cached bigint, p_cache_write bigint, p_provenance smallint,
  p_amount bigint, p_currency text, p_price_version integer, p_now timestamptz,
  p_period_starts timestamptz[]
) RETURNS TABLE (outcome text, reservation cost.reservations, usage cost.usage_records)
  LANGUAGE plpgsql
  AS $$
DECLARE
  r cost.reservations;
  u cost.usage_records;
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  SELECT x.* INTO r FROM cost.reservations x WHERE x.tenant_id = p_tenant AND x.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found'::text, NULL::cost.reservations, NULL::cost.usage_records;
    RETURN;
  END IF;
  IF r.state <> 1 THEN
    SELECT x.* INTO u FROM cost.usage_records x WHERE x.tenant_id = p_tenant AND x.id = r.usage_id;
    RETURN QUERY SELECT 'settled'::text, r, u;
    RETURN;
  END IF;
  IF r.expire_time <= p_now THEN
    RETURN QUERY SELECT 'expired'::text, cost.unhold(r, 4::smallint, p_now), NULL::cost.usage_records;
    RETURN;
  END IF;
  IF cost.price_version_at(p_model, p_now) IS DISTINCT FROM p_price_version THEN
    RETURN QUERY SELECT 'price_changed'::text, r, NULL::cost.usage_records;
    RETURN;
  END IF;
  INSERT INTO cost.usage_records AS x (tenant_id, id, idempotency_key, request_hash, model,
    input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, provenance, user_id,
    api_key_id, task, usage_time, amount_micros, currency_code, price_version, reservation_id,
    over_estimate)
  VALUES (p_tenant, p_usage_id, 'reservations/' || p_id, p_request_hash, p_model, p_input,
    p_output, p_cached, p_cache_write, p_provenance, r.user_id, r.api_key_id, r.task, p_now,
    p_amount, p_currency, p_price_version, p_id, p_amount > r.amount_micros)
  RETURNING x.* INTO u;
  UPDATE cost.reservations x SET state = 2, settle_time = p_now, usage_id = p_usage_id
  WHERE x.tenant_id = p_tenant AND x.id = p_id
  RETURNING x.* INTO r;
  PERFORM cost.apply_spend(p_tenant, p_usage_id, r.user_id, r.api_key_id, r.task, p_amount,
                           p_now, p_period_starts, r.budget_pks, r.amount_micros, p_now);
  RETURN QUERY SELECT 'committed'::text, r, u;
END
$$;

-- RecordUsage: 'recorded' (with the record), 'replayed' (key seen: the earlier
-- record; the caller compares hashes) or 'price_changed'.
CREATE FUNCTION cost.record_usage(
  p_tenant text, p_usage_id text, p_key text, p_request_hash bytea, p_model text,
  p_input bigint, p_output bigint, p_cached bigint, p_cache_write bigint, p_provenance smallint,
  p_user text, p_api_key text, p_task text, p_usage_time timestamptz, p_amount bigint,
  p_currency text, p_price_version integer, p_period_starts timestamptz[], p_now timestamptz
) RETURNS TABLE (outcome text, usage cost.usage_records)
  LANGUAGE plpgsql
  AS $$
DECLARE
  u cost.usage_records;
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  IF cost.price_version_at(p_model, p_usage_time) IS DISTINCT FROM p_price_version THEN
    RETURN QUERY SELECT 'price_changed'::text, NULL::cost.usage_records;
    RETURN;
  END IF;
  INSERT INTO cost.usage_records AS x (tenant_id, id, idempotency_key, request_hash, model,
    input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, provenance, user_id,
    api_key_id, task, usage_time, amount_micros, currency_code, price_version)
  VALUES (p_tenant, p_usage_id, p_key, p_request_hash, p_model, p_input, p_output, p_cached,
    p_cache_write, p_provenance, p_user, p_api_key, p_task, p_usage_time, p_amount, p_currency,
    p_price_version)
  ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
  RETURNING x.* INTO u;
  IF NOT FOUND THEN
    SELECT x.* INTO u FROM cost.usage_records x
    WHERE x.tenant_id = p_tenant AND x.idempotency_key = p_key;
    RETURN QUERY SELECT 'replayed'::text, u;
    RETURN;
  END IF;
  PERFORM cost.apply_spend(p_tenant, p_usage_id, p_user, p_api_key, p_task, p_amount,
                           p_usage_time, p_period_starts, '{}'::bigint[], 0, p_now);
  RETURN QUERY SELECT 'recorded'::text, u;
END
$$;

-- The sweeper: expires up to `p_limit` lapsed reservations of any tenant (in a
-- transaction with app.cost_sweeper = on); returns how many.
CREATE FUNCTION cost.expire_reservations(p_now timestamptz, p_limit integer) RETURNS integer
  LANGUAGE plpgsql
  AS $$
DECLARE
  lapsed cost.reservations[];
  all_pks bigint[];
BEGIN
  SELECT coalesce(array_agg(s.x), '{}') INTO lapsed
  FROM (
    SELECT x FROM cost.reservations x
    WHERE x.state = 1 AND x.expire_time <= p_now
    ORDER BY x.expire_time
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ) s;
  IF cardinality(lapsed) = 0 THEN
    RETURN 0;
  END IF;
  SELECT coalesce(array_agg(DISTINCT held.pk), '{}') INTO all_pks
  FROM unnest(lapsed) l CROSS JOIN LATERAL unnest(l.budget_pks) AS held(pk);
  PERFORM 1 FROM cost.budgets b WHERE b.pk = ANY(all_pks) ORDER BY b.pk FOR UPDATE;
  UPDATE cost.budgets b SET reserved_micros = b.reserved_micros - freed.total
  FROM (SELECT held.pk, sum(l.amount_micros) AS total
        FROM unnest(lapsed) l CROSS JOIN LATERAL unnest(l.budget_pks) AS held(pk)
        GROUP BY held.pk) freed
  WHERE b.pk = freed.pk;
  UPDATE cost.reservations x SET state = 4, settle_time = p_now
  FROM unnest(lapsed) l WHERE x.tenant_id = l.tenant_id AND x.id = l.id;
  RETURN cardinality(lapsed);
END
$$;
