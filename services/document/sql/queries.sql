-- Named queries of DocumentService, called by name from store.py.
-- Every query runs inside a transaction that set `app.tenant_id` (or
-- `app.watch_all`), so row-level security, not these WHERE clauses, is what
-- keeps tenants apart.

-- name: lock_feed
-- Taken first by every write transaction, held until commit: sequences are
-- then drawn in commit order (see 0001_document.sql). create_document takes
-- it inside the function.
SELECT pg_advisory_xact_lock(document.feed_lock_key());

-- name: create_document
-- AIP-155 in one statement (see 0002_create_function.sql): the insert either
-- wins or conflicts, on the id or on the request id; only a winner writes a
-- change and a notification. It sets the tenant itself: call it outside a
-- transaction, in one round trip.
SELECT * FROM document.create_document($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);

-- name: document_exists
SELECT etag FROM document.documents WHERE id = $1;

-- name: get_document
SELECT * FROM document.documents WHERE id = $1;

-- name: get_documents
SELECT * FROM document.documents WHERE id = ANY($1::text[]);

-- name: update_document
-- $1 id, $2 expected etag ('' for unconditional); then a flag and a value per
-- updatable field: $3/$4 title, $5/$6 content (+ $7 size_bytes), $8/$9
-- mime_type, $10/$11 labels, $12/$13 metadata, $14/$15 source_uri.
WITH updated AS (
  UPDATE document.documents SET
    title       = CASE WHEN $3  THEN $4  ELSE title END,
    content     = CASE WHEN $5  THEN $6  ELSE content END,
    size_bytes  = CASE WHEN $5  THEN $7  ELSE size_bytes END,
    mime_type   = CASE WHEN $8  THEN $9  ELSE mime_type END,
    labels      = CASE WHEN $10 THEN $11 ELSE labels END,
    metadata    = CASE WHEN $12 THEN $13 ELSE metadata END,
    source_uri  = CASE WHEN $14 THEN $15 ELSE source_uri END,
    update_time = clock_timestamp(),
    sequence    = nextval(pg_get_serial_sequence('document.changes', 'sequence'))
  WHERE id = $1 AND ($2 = '' OR etag = $2)
  RETURNING *
), change AS (
  INSERT INTO document.changes
    (sequence, tenant_id, document_id, change_type, change_time, title, content, mime_type,
     labels, metadata, source_uri, create_time, update_time, etag, size_bytes)
  SELECT sequence, tenant_id, id, 2, update_time, title, content, mime_type,
         labels, metadata, source_uri, create_time, update_time, etag, size_bytes
  FROM updated
  RETURNING sequence, tenant_id
), notified AS (
  SELECT pg_notify('document_changes', sequence::text || ' ' || tenant_id) FROM change
)
SELECT updated.*, (SELECT count(*) FROM notified) AS notified FROM updated;

-- name: delete_document
-- $1 id, $2 expected etag ('' for unconditional).
WITH deleted AS (
  DELETE FROM document.documents
  WHERE id = $1 AND ($2 = '' OR etag = $2)
  RETURNING tenant_id, id
), change AS (
  INSERT INTO document.changes (sequence, tenant_id, document_id, change_type, change_time)
  SELECT nextval(pg_get_serial_sequence('document.changes', 'sequence')), tenant_id, id, 3,
         clock_timestamp()
  FROM deleted
  RETURNING sequence, tenant_id
), notified AS (
  SELECT pg_notify('document_changes', sequence::text || ' ' || tenant_id) FROM change
)
SELECT change.sequence, (SELECT count(*) FROM notified) AS notified FROM change;

-- name: changes_after
-- A tenant's feed after a cursor, in sequence order; $3 false leaves content
-- out. The tenant condition repeats the RLS policy so the planner can use
-- changes_by_tenant (the policies, OR-ed with watch_all_read, cannot).
SELECT sequence, tenant_id, document_id, change_type, change_time, title,
       CASE WHEN $3 THEN content END AS content, mime_type, labels, metadata, source_uri,
       create_time, update_time, etag, size_bytes
FROM document.changes
WHERE sequence > $1 AND tenant_id = current_setting('app.tenant_id', true)
ORDER BY sequence
LIMIT $2;

-- name: changes_after_all_tenants
-- Every tenant's feed after a cursor (needs app.watch_all = on).
SELECT sequence, tenant_id, document_id, change_type, change_time, title,
       CASE WHEN $3 THEN content END AS content, mime_type, labels, metadata, source_uri,
       create_time, update_time, etag, size_bytes
FROM document.changes
WHERE sequence > $1
ORDER BY sequence
LIMIT $2;
