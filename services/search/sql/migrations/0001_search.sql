-- SearchService schema: a read model of the documents, rebuilt from the
-- documents service's change feed (never from its tables).
CREATE SCHEMA IF NOT EXISTS search;

-- The first time this runs in a database, pgvector is there (platform bootstrap).
-- One row per chunk of a document. `(tenant_id, document_name, ordinal)` is its
-- identity; updates re-chunk and upsert by ordinal, then drop the tail.
CREATE TABLE search.chunks (
  id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id        text        NOT NULL,
  document_name    text        NOT NULL,   -- documents/{id}
  ordinal          integer     NOT NULL,
  title            text        NOT NULL DEFAULT '',
  text             text        NOT NULL,
  labels           jsonb       NOT NULL DEFAULT '{}'::jsonb,
  update_time      timestamptz NOT NULL,   -- the document's update_time
  -- The full-text leg ranks this stored vector (title weighted above body);
  -- computing to_tsvector per query costs hundreds of ms at 100k rows.
  tsv              tsvector    GENERATED ALWAYS AS (
                     setweight(to_tsvector('english'::regconfig, title), 'A') ||
                     setweight(to_tsvector('english'::regconfig, text), 'B')
                   ) STORED,
  -- NULL until the embedding pass has run: the chunk is keyword-searchable at
  -- once and joins the vector leg when its embedding lands.
  embedding        vector(384),
  embedding_model  text,
  -- false = the embedding pass must (re)do this chunk: new or changed text, or
  -- ReindexTenant. The old vector (if any) keeps serving until replaced.
  embedding_fresh  boolean     NOT NULL DEFAULT false,
  content_hash     text        NOT NULL,   -- of `text`: unchanged text keeps its vector
  applied_sequence bigint      NOT NULL,   -- change-feed sequence that wrote the row
  CONSTRAINT chunks_identity UNIQUE (tenant_id, document_name, ordinal)
);

CREATE INDEX chunks_tsv ON search.chunks USING gin (tsv);
CREATE INDEX chunks_labels ON search.chunks USING gin (labels jsonb_path_ops);
CREATE INDEX chunks_by_update_time ON search.chunks (tenant_id, update_time);
-- Work queue of the embedding pass.
CREATE INDEX chunks_embedding_due ON search.chunks (id) WHERE NOT embedding_fresh;
-- Cosine HNSW over every tenant. Queries filter by tenant, so they run with
-- hnsw.iterative_scan and an exact re-rank (see queries.sql, docs/search.md).
CREATE INDEX chunks_embedding_hnsw ON search.chunks
  USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

-- Where the indexer is in the change feed: one row. Written in the same
-- transaction as the chunk changes of each applied change, so a crash can
-- neither skip nor repeat a change. Not tenant data (no RLS): two numbers.
CREATE TABLE search.checkpoint (
  singleton          boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
  applied_sequence   bigint      NOT NULL DEFAULT 0,
  head_sequence      bigint      NOT NULL DEFAULT 0,   -- newest the feed reported
  last_applied_time  timestamptz
);
INSERT INTO search.checkpoint (singleton) VALUES (true);

-- Row-level security: searches see the caller's tenant only. The indexer
-- (trusted, cross-tenant by nature: it applies every tenant's changes and fills
-- embeddings) works in transactions that set `app.indexer = on` through
-- settings_transaction; only the search service's own indexer code does that.
ALTER TABLE search.chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE search.chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON search.chunks
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY indexer_all ON search.chunks
  USING (current_setting('app.indexer', true) = 'on')
  WITH CHECK (current_setting('app.indexer', true) = 'on');

-- Query text → tsquery matching ANY of its terms (ranked by ts_rank_cd), so a
-- natural-language query is not an all-words-must-match filter.
CREATE FUNCTION search.any_terms(query text) RETURNS tsquery
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT coalesce(nullif(replace(plainto_tsquery('english'::regconfig, query)::text,
                                      ' & ', ' | '), ''), '')::tsquery $$;
