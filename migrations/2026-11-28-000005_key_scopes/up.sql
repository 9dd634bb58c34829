-- What a key may do: space-separated scopes. Keys made before scopes
-- existed keep every power they had.
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'read-drafts write';
