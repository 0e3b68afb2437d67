-- A connection's details keep only the public fields of the provider's
-- token answer (integrations.PublicDetails, whose allow-list this mirrors):
-- an id_token, Slack's authed_user.access_token or incoming_webhook, and
-- any other field a provider added were stored before and are dropped.
UPDATE integration_connections c SET details = coalesce((
    SELECT jsonb_object_agg(k, v) FROM (
        SELECT key AS k, value AS v FROM jsonb_each(c.details)
        WHERE jsonb_typeof(value) IN ('string', 'number', 'boolean') AND (
            (c.provider = 'slack' AND key IN ('app_id', 'bot_user_id', 'is_enterprise_install'))
            OR (c.provider = 'shopify' AND key = 'associated_user_scope')
            OR (c.provider = 'stripe' AND key IN ('stripe_user_id', 'livemode')))
        UNION ALL
        SELECT o.key, (SELECT coalesce(jsonb_object_agg(f.key, f.value), '{}') FROM jsonb_each(o.value) f
                WHERE jsonb_typeof(f.value) IN ('string', 'number', 'boolean') AND (
                    (c.provider = 'slack' AND o.key IN ('team', 'enterprise') AND f.key IN ('id', 'name'))
                    OR (c.provider = 'slack' AND o.key = 'authed_user' AND f.key IN ('id', 'scope'))
                    OR (c.provider = 'shopify' AND o.key = 'associated_user' AND f.key IN ('id', 'email'))))
        FROM jsonb_each(c.details) o
        WHERE jsonb_typeof(o.value) = 'object' AND (
            (c.provider = 'slack' AND o.key IN ('team', 'enterprise', 'authed_user'))
            OR (c.provider = 'shopify' AND o.key = 'associated_user'))
    ) kept), '{}'::jsonb)
WHERE details <> '{}'::jsonb;
