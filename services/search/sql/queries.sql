-- Named queries of SearchService, called by name from store.py.
-- Search queries run in tenant transactions (row-level security admits the
-- caller's rows; the tenant condition is repeated so the planner can use it);
-- indexer queries run as the protomesh_search_indexer role (its own RLS policy).
--
-- Filter parameters of the search legs, NULL when absent: $3 labels (jsonb the
-- chunk's labels must contain), $4 document names, $5/$6 update-time range
-- [min, max).

-- name: keyword_candidates
-- The full-text leg: chunks matching any query term over the stored tsvector
-- (GIN), best first by ts_rank with length normalisation (flag 1: divided by
-- 1 + log(length)); on bench/search_quality.py it beats ts_rank_cd, which scores
-- proximity of any-term covers: nDCG@10 0.585 vs 0.391. $1 query, $2 how many.
SELECT c.id, ts_rank(c.tsv, q.q, 1) AS score
FROM search.chunks c, (SELECT search.any_terms($1) AS q) q
WHERE c.tenant_id = current_setting('app.tenant_id', true)
  AND c.tsv @@ q.q
  AND ($3::jsonb IS NULL OR c.labels @> $3::jsonb)
  AND ($4::text[] IS NULL OR c.document_name = ANY($4::text[]))
  AND ($5::timestamptz IS NULL OR c.update_time >= $5::timestamptz)
  AND ($6::timestamptz IS NULL OR c.update_time < $6::timestamptz)
ORDER BY score DESC, c.id
LIMIT $2;

-- name: vector_settings
-- Before vector_candidates, in the same transaction: keep scanning the HNSW
-- graph until enough rows pass the tenant/filter conditions (pgvector 0.8
-- iterative scan) and look wider per step. relaxed_order is re-sorted exactly
-- by vector_candidates' outer ORDER BY.
SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),
       set_config('hnsw.ef_search', $1::text, true),
       set_config('hnsw.max_scan_tuples', $2::text, true);

-- name: vector_candidates
-- The vector leg through the HNSW index: $1 query vector, $2 how
-- many; re-ranked by exact distance. Returns cosine similarity.
SELECT id, 1 - distance AS score
FROM (
  SELECT c.id, c.embedding <=> $1::vector AS distance
  FROM search.chunks c
  WHERE c.tenant_id = current_setting('app.tenant_id', true)
    AND c.embedding IS NOT NULL
    AND ($3::jsonb IS NULL OR c.labels @> $3::jsonb)
    AND ($4::text[] IS NULL OR c.document_name = ANY($4::text[]))
    AND ($5::timestamptz IS NULL OR c.update_time >= $5::timestamptz)
    AND ($6::timestamptz IS NULL OR c.update_time < $6::timestamptz)
  ORDER BY c.embedding <=> $1::vector
  LIMIT $2
) ann
ORDER BY distance, id;

-- name: vector_qualifying
-- How many chunks could answer the vector leg, counted up to $2: tells a short
-- index scan that found everything from one that gave up early. ($1, the query
-- vector, is only checked for presence: it keeps the other vector queries'
-- parameter numbering.)
SELECT count(*) AS n
FROM (
  SELECT 1
  FROM search.chunks c
  WHERE c.tenant_id = current_setting('app.tenant_id', true)
    AND c.embedding IS NOT NULL
    AND ($3::jsonb IS NULL OR c.labels @> $3::jsonb)
    AND ($4::text[] IS NULL OR c.document_name = ANY($4::text[]))
    AND ($5::timestamptz IS NULL OR c.update_time >= $5::timestamptz)
    AND ($6::timestamptz IS NULL OR c.update_time < $6::timestamptz)
  LIMIT $2
) qualifying
WHERE $1::vector IS NOT NULL;

-- name: vector_exact
-- The vector leg without the index (`+ 0` keeps the planner off HNSW): used
-- when the index scan came back short although more rows qualify.
SELECT c.id, 1 - (c.embedding <=> $1::vector) AS score
FROM search.chunks c
WHERE c.tenant_id = current_setting('app.tenant_id', true)
  AND c.embedding IS NOT NULL
  AND ($3::jsonb IS NULL OR c.labels @> $3::jsonb)
  AND ($4::text[] IS NULL OR c.document_name = ANY($4::text[]))
  AND ($5::timestamptz IS NULL OR c.update_time >= $5::timestamptz)
  AND ($6::timestamptz IS NULL OR c.update_time < $6::timestamptz)
ORDER BY (c.embedding <=> $1::vector) + 0, c.id
LIMIT $2;

-- name: page_rows
-- The chunks of one result page with a highlighted excerpt; $1 ids, $2 query
-- text, $3 ts_headline options (selection markers are private-use
-- characters, removed from the text first so a document cannot forge one).
SELECT c.id, c.document_name, c.ordinal, c.title, c.text, c.labels,
       ts_headline('english'::regconfig,
                   translate(c.text, E'\uE000\uE001', ''),
                   search.any_terms($2), $3) AS headline
FROM search.chunks c
WHERE c.id = ANY($1::bigint[])
  AND c.tenant_id = current_setting('app.tenant_id', true);

-- name: tenant_status
-- $1 the current chunker version.
SELECT count(DISTINCT document_name) AS documents,
       count(*) AS chunks,
       count(*) FILTER (WHERE NOT embedding_fresh) AS pending,
       count(DISTINCT document_name) FILTER (WHERE chunker_version < $1) AS outdated,
       EXISTS (SELECT 1 FROM search.rebuilds
               WHERE tenant_id = current_setting('app.tenant_id', true)) AS rebuilding
FROM search.chunks
WHERE tenant_id = current_setting('app.tenant_id', true);

-- name: reindex_tenant
-- Marks every chunk of the tenant made by the current chunker ($1) for
-- re-embedding (older ones are rebuilt whole, see request_rebuild); vectors
-- keep serving until the embedding pass replaces them. Returns how many are
-- queued.
WITH marked AS (
  UPDATE search.chunks SET embedding_fresh = false
  WHERE tenant_id = current_setting('app.tenant_id', true) AND embedding_fresh
    AND chunker_version >= $1
  RETURNING 1
)
SELECT (SELECT count(*) FROM marked)
     + (SELECT count(*) FROM search.chunks
        WHERE tenant_id = current_setting('app.tenant_id', true) AND NOT embedding_fresh
          AND chunker_version >= $1);

-- name: request_rebuild
-- Queues the rebuild of the tenant's documents chunked by a version older than
-- $1, if it has any; returns how many documents that is.
WITH outdated AS (
  SELECT count(DISTINCT document_name) AS n
  FROM search.chunks
  WHERE tenant_id = current_setting('app.tenant_id', true) AND chunker_version < $1
), queued AS (
  INSERT INTO search.rebuilds (tenant_id, chunker_version)
  SELECT current_setting('app.tenant_id', true), $1 FROM outdated WHERE n > 0
  ON CONFLICT (tenant_id) DO UPDATE SET chunker_version = EXCLUDED.chunker_version
  RETURNING 1
)
SELECT n FROM outdated;

-- name: read_checkpoint
SELECT applied_sequence, head_sequence, last_applied_time FROM search.checkpoint;

-- name: applied_sequence
-- How far the index that this connection reads has applied the change feed (on
-- a streaming replica: as far as the replica has replayed the primary's WAL).
SELECT applied_sequence FROM search.checkpoint;

-- name: lock_checkpoint
-- First statement of every apply transaction: serialises indexers (a second
-- replica waits here, then sees the advanced sequence and skips the change).
SELECT applied_sequence FROM search.checkpoint FOR UPDATE;

-- name: advance_checkpoint
-- Last statement of an apply transaction; the NOTIFY is delivered at commit,
-- waking searches that wait for read-your-writes.
WITH advanced AS (
  UPDATE search.checkpoint
  SET applied_sequence = $1, head_sequence = greatest(head_sequence, $1),
      last_applied_time = clock_timestamp()
  RETURNING applied_sequence
)
SELECT pg_notify('search_applied', applied_sequence::text) FROM advanced;

-- name: record_head
UPDATE search.checkpoint SET head_sequence = greatest(head_sequence, $1);

-- name: upsert_chunks
-- A created/updated document's chunks by ordinal: $1 tenant, $2 document name,
-- $3 ordinals, $4 texts, $5 content hashes, $6 title, $7 labels, $8 update
-- time, $9 sequence, $10 chunker version, $11 vectors (NULL entries where
-- none was computed) and $12 their model. A chunk without a
-- given vector whose content hash some current chunk of the document already
-- has keeps that vector (no re-embedding); others get NULL and wait for the
-- embedding pass.
WITH incoming AS (
  SELECT * FROM unnest($3::int[], $4::text[], $5::text[], $11::vector[])
    AS n(ordinal, text, content_hash, embedding)
), reusable AS (
  SELECT DISTINCT ON (content_hash) content_hash, embedding, embedding_model
  FROM search.chunks
  WHERE tenant_id = $1 AND document_name = $2 AND embedding IS NOT NULL AND embedding_fresh
    AND content_hash = ANY($5::text[])
)
INSERT INTO search.chunks AS c
  (tenant_id, document_name, ordinal, title, text, labels, update_time, embedding,
   embedding_model, embedding_fresh, content_hash, applied_sequence, chunker_version)
SELECT $1, $2, n.ordinal, $6, n.text, $7, $8,
       coalesce(n.embedding, r.embedding),
       CASE WHEN n.embedding IS NOT NULL THEN $12 ELSE r.embedding_model END,
       n.embedding IS NOT NULL OR r.embedding IS NOT NULL, n.content_hash, $9, $10
FROM incoming n LEFT JOIN reusable r USING (content_hash)
ON CONFLICT (tenant_id, document_name, ordinal) DO UPDATE SET
  title = EXCLUDED.title, text = EXCLUDED.text, labels = EXCLUDED.labels,
  update_time = EXCLUDED.update_time, embedding = EXCLUDED.embedding,
  embedding_model = EXCLUDED.embedding_model, embedding_fresh = EXCLUDED.embedding_fresh,
  content_hash = EXCLUDED.content_hash, applied_sequence = EXCLUDED.applied_sequence,
  chunker_version = EXCLUDED.chunker_version;

-- name: delete_chunks_from
-- Drops a document's chunks from ordinal $3 on (all of them with 0).
DELETE FROM search.chunks WHERE tenant_id = $1 AND document_name = $2 AND ordinal >= $3;

-- name: due_chunks
-- The embedding pass's next batch: chunks without a vector first, then stale
-- ones (ReindexTenant).
SELECT id, title, text, content_hash
FROM search.chunks
WHERE NOT embedding_fresh
ORDER BY embedding IS NOT NULL, id
LIMIT $1;

-- name: store_embeddings
-- $1 ids, $2 the content hashes the vectors were computed from, $3 vectors,
-- $4 model id. A chunk rewritten in the meantime (other hash)
-- is left for the next batch.
UPDATE search.chunks c
SET embedding = v.embedding, embedding_model = $4, embedding_fresh = true
FROM unnest($1::bigint[], $2::text[], $3::vector[]) AS v(id, content_hash, embedding)
WHERE c.id = v.id AND c.content_hash = v.content_hash;

-- name: rebuild_candidates
-- The rebuild pass's next batch: up to $2 documents of one tenant that asked
-- for a rebuild, chunked by a version older than $1, each with the newest
-- change-feed sequence its chunks were written at.
WITH tenant AS (
  SELECT tenant_id FROM search.rebuilds ORDER BY requested_time, tenant_id LIMIT 1
)
SELECT c.tenant_id, c.document_name, max(c.applied_sequence) AS applied_sequence
FROM search.chunks c JOIN tenant t USING (tenant_id)
WHERE c.chunker_version < $1
GROUP BY c.tenant_id, c.document_name
ORDER BY c.document_name
LIMIT $2;

-- name: finish_rebuilds
-- Drops the rebuild requests of tenants with no chunk older than the version
-- they asked for.
DELETE FROM search.rebuilds r
WHERE NOT EXISTS (
  SELECT 1 FROM search.chunks c
  WHERE c.tenant_id = r.tenant_id AND c.chunker_version < r.chunker_version
);

-- name: document_state
-- Where a document's chunks stand: the newest sequence that wrote them and the
-- oldest chunker among them (NULLs when it has none: deleted).
SELECT max(applied_sequence) AS applied_sequence, min(chunker_version) AS chunker_version
FROM search.chunks
WHERE tenant_id = $1 AND document_name = $2;
