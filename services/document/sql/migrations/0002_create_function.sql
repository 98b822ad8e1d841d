-- CreateDocument in one round trip. The write path of a create (set the tenant,
-- take the feed lock, insert-or-conflict, write the change, notify, or read the
-- earlier create that owns the request id) runs as ONE statement, so the feed
-- lock is held for the function's remaining work and the commit only, instead
-- of for several client round trips: creates serialise on the lock, and that
-- hold time is what bounds ingest throughput.
--
-- The function sets `app.tenant_id` itself, transaction-locally, exactly as
-- `tenant_transaction` does; it runs with the caller's rights, so row-level
-- security applies to every statement in it.
--
-- outcome: 'created' (a new document), 'replayed' (the row created earlier with
-- this request id; the caller compares request_hash), 'exists' (the id is taken
-- and no earlier create used this request id; no row data).
CREATE FUNCTION document.create_document(
  p_tenant text, p_id text, p_title text, p_content text, p_mime_type text,
  p_labels jsonb, p_metadata jsonb, p_source_uri text, p_size_bytes bigint,
  p_request_id text, p_request_hash bytea
) RETURNS TABLE (
  outcome text, tenant_id text, id text, title text, content text, mime_type text,
  labels jsonb, metadata jsonb, source_uri text, create_time timestamptz,
  update_time timestamptz, sequence bigint, etag text, size_bytes bigint,
  request_hash bytea
)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
  d document.documents;
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  PERFORM pg_advisory_xact_lock(document.feed_lock_key());
  INSERT INTO document.documents AS t
    (tenant_id, id, title, content, mime_type, labels, metadata, source_uri, size_bytes,
     request_id, request_hash, sequence)
  VALUES (p_tenant, p_id, p_title, p_content, p_mime_type, p_labels, p_metadata, p_source_uri,
          p_size_bytes, p_request_id, p_request_hash,
          nextval(pg_get_serial_sequence('document.changes', 'sequence')))
  ON CONFLICT DO NOTHING
  RETURNING t.* INTO d;
  IF FOUND THEN
    INSERT INTO document.changes
      (sequence, tenant_id, document_id, change_type, change_time, title, content, mime_type,
       labels, metadata, source_uri, create_time, update_time, etag, size_bytes)
    VALUES (d.sequence, d.tenant_id, d.id, 1, d.update_time, d.title, d.content, d.mime_type,
            d.labels, d.metadata, d.source_uri, d.create_time, d.update_time, d.etag,
            d.size_bytes);
    PERFORM pg_notify('document_changes', d.sequence::text || ' ' || d.tenant_id);
    outcome := 'created';
  ELSE
    SELECT * INTO d FROM document.documents AS t WHERE t.request_id = p_request_id;
    outcome := CASE WHEN FOUND THEN 'replayed' ELSE 'exists' END;
  END IF;
  tenant_id := d.tenant_id; id := d.id; title := d.title; content := d.content;
  mime_type := d.mime_type; labels := d.labels; metadata := d.metadata;
  source_uri := d.source_uri; create_time := d.create_time; update_time := d.update_time;
  sequence := d.sequence; etag := d.etag; size_bytes := d.size_bytes;
  request_hash := d.request_hash;
  RETURN NEXT;
END
$$;
