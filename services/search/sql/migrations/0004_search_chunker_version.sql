-- Chunks remember which chunker made them (services/search/chunking.py,
-- CHUNKER_VERSION), so a change of chunking rules can rebuild old indexes.
-- Rows from before this migration were made by version 1 (120-word windows).
ALTER TABLE search.chunks ADD COLUMN chunker_version smallint NOT NULL DEFAULT 1;
-- Finds a tenant's outdated documents (GetIndexStatus, the rebuild pass).
CREATE INDEX chunks_by_chunker_version ON search.chunks (tenant_id, chunker_version);

-- Tenants that asked (ReindexTenant) for their outdated documents to be
-- rebuilt: the rebuild pass works through them and removes a row once the
-- tenant has no chunk older than `chunker_version` left.
CREATE TABLE search.rebuilds (
  tenant_id       text        PRIMARY KEY,
  chunker_version smallint    NOT NULL,
  requested_time  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE search.rebuilds ENABLE ROW LEVEL SECURITY;
ALTER TABLE search.rebuilds FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON search.rebuilds
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY indexer_all ON search.rebuilds TO protomesh_search_indexer
  USING (true)
  WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON search.rebuilds TO protomesh_search_indexer;
