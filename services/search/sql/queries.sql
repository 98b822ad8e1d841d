-- Named queries of SearchService, called by name from store.py.
-- Search legs and the page are functions that set the tenant first (migration
-- 0006: row-level security admits the caller's rows; the tenant condition is
-- repeated so the planner can use it); the rest run in tenant transactions;
-- indexer queries run as the protomesh_search_indexer role (its own RLS policy).
--
-- Filter parameters of the search legs, NULL when absent: labels (jsonb the
-- chunk's labels must contain), document names, update-time range [min, max)
-- ($3-$6 in vector_qualifying and vector_exact).

-- name: keyword_leg
-- The full-text leg in one statement (migration 0006): $1 tenant, $2 query,
-- $3 how many, $4-$7 the filters.
SELECT id, score FROM search.keyword_leg($1, $2, $3, $4, $5, $6, $7);

-- name: vector_leg
-- The vector leg in one statement (migration 0006): $1 tenant, $2 query vector,
-- $3 how many, $4 hnsw.ef_search, $5 hnsw.max_scan_tuples, $6-$9 the filters.
SELECT id, score FROM search.vector_leg($1, $2::vector, $3, $4, $5, $6, $7, $8, $9);

-- name: set_tenant
-- The tenant for row-level security, until the transaction ends.
SELECT set_config('app.tenant_id', $1, true);

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
-- The chunks of one result page with their excerpts (migration 0006): $1 tenant,
-- $2 ids, $3 query text, $4 ts_headline options.
SELECT id, document_name, ordinal, title, text, labels, headline
FROM search.page_rows($1, $2::bigint[], $3, $4);

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
