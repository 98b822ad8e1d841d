-- The search legs and the result page as one statement each. A leg used to be a
-- tenant transaction: BEGIN, set_config, the query, COMMIT (and the pool's reset),
-- four round trips for one query, ~0.37 ms of a 1.3 ms keyword leg at 2k chunks a
-- tenant. Each function sets the tenant (transaction-local, as tenant_transaction
-- does) and then runs its query; called on its own, the statement is its own
-- transaction, so the setting ends with it. They run as the caller (SECURITY
-- INVOKER): row-level security applies exactly as before, and a caller can name
-- no tenant it could not already set itself.

-- The keyword leg: chunks matching any query term over the stored tsvector (GIN),
-- best first by ts_rank with length normalisation (flag 1: divided by
-- 1 + log(length)); on bench/search_quality.py it beats ts_rank_cd, which scores
-- proximity of any-term covers: nDCG@10 0.585 vs 0.391.
CREATE FUNCTION search.keyword_leg(
  tenant text, query text, how_many integer,
  labels jsonb, names text[], after timestamptz, before timestamptz
) RETURNS TABLE (id bigint, score real)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
  PERFORM set_config('app.tenant_id', tenant, true);
  RETURN QUERY
  SELECT c.id, ts_rank(c.tsv, q.q, 1) AS score
  FROM search.chunks c, (SELECT search.any_terms(keyword_leg.query) AS q) q
  WHERE c.tenant_id = current_setting('app.tenant_id', true)
    AND c.tsv @@ q.q
    AND (keyword_leg.labels IS NULL OR c.labels @> keyword_leg.labels)
    AND (keyword_leg.names IS NULL OR c.document_name = ANY(keyword_leg.names))
    AND (keyword_leg.after IS NULL OR c.update_time >= keyword_leg.after)
    AND (keyword_leg.before IS NULL OR c.update_time < keyword_leg.before)
  ORDER BY score DESC, c.id
  LIMIT how_many;
END
$$;

-- The vector leg through the HNSW index, re-ranked by exact distance; returns
-- cosine similarity. The HNSW settings (transaction-local): keep scanning the
-- graph until enough rows pass the tenant/filter conditions (pgvector 0.8
-- iterative scan) and look wider per step; relaxed_order is re-sorted exactly by
-- the outer ORDER BY.
CREATE FUNCTION search.vector_leg(
  tenant text, query vector, how_many integer, ef_search text, max_scan_tuples text,
  labels jsonb, names text[], after timestamptz, before timestamptz
) RETURNS TABLE (id bigint, score double precision)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
  PERFORM set_config('app.tenant_id', tenant, true),
          set_config('hnsw.iterative_scan', 'relaxed_order', true),
          set_config('hnsw.ef_search', ef_search, true),
          set_config('hnsw.max_scan_tuples', max_scan_tuples, true);
  RETURN QUERY
  SELECT ann.id, 1 - ann.distance AS score
  FROM (
    SELECT c.id, c.embedding <=> vector_leg.query AS distance
    FROM search.chunks c
    WHERE c.tenant_id = current_setting('app.tenant_id', true)
      AND c.embedding IS NOT NULL
      AND (vector_leg.labels IS NULL OR c.labels @> vector_leg.labels)
      AND (vector_leg.names IS NULL OR c.document_name = ANY(vector_leg.names))
      AND (vector_leg.after IS NULL OR c.update_time >= vector_leg.after)
      AND (vector_leg.before IS NULL OR c.update_time < vector_leg.before)
    ORDER BY c.embedding <=> vector_leg.query
    LIMIT how_many
  ) ann
  ORDER BY ann.distance, ann.id;
END
$$;

-- The chunks of one result page with a highlighted excerpt (selection markers
-- are private-use characters, removed from the text first so a document cannot
-- forge one).
CREATE FUNCTION search.page_rows(tenant text, ids bigint[], query text, options text)
RETURNS TABLE (
  id bigint, document_name text, ordinal integer, title text, text text, labels jsonb,
  headline text
)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
  PERFORM set_config('app.tenant_id', tenant, true);
  RETURN QUERY
  SELECT c.id, c.document_name, c.ordinal, c.title, c.text, c.labels,
         ts_headline('english'::regconfig,
                     translate(c.text, E'\uE000\uE001', ''),
                     search.any_terms(page_rows.query), page_rows.options)
  FROM search.chunks c
  WHERE c.id = ANY(page_rows.ids)
    AND c.tenant_id = current_setting('app.tenant_id', true);
END
$$;
