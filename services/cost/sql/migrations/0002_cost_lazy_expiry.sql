-- Lazy expiry on release: a reservation whose ttl has passed is EXPIRED whether
-- or not the sweeper has reached it yet, so releasing it gives its hold back as
-- an expiry ('expired', state 4) instead of recording a release. Commit already
-- treats it that way (0001).
CREATE OR REPLACE FUNCTION cost.release_reservation(p_tenant text, p_id text, p_now timestamptz)
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
  IF r.expire_time <= p_now THEN
    RETURN QUERY SELECT 'expired'::text, cost.unhold(r, 4::smallint, p_now);
    RETURN;
  END IF;
  RETURN QUERY SELECT 'released'::text, cost.unhold(r, 3::smallint, p_now);
END
$$;
