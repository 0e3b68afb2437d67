-- An Idempotency-Key belongs to the API key that sent it: a replay answers
-- only that API key, and the same key string from another API key is
-- another request. Rows kept before this migration have no API key
-- (the nil uuid) and are no longer found; they expire as usual.
ALTER TABLE idempotency_keys ADD COLUMN api_key_id uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE idempotency_keys ALTER COLUMN api_key_id DROP DEFAULT;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (workspace_id, api_key_id, key);
