-- 0002: forward auth: machine credentials and gate cookies / one-time codes.

CREATE TABLE api_tokens (
	id         TEXT    NOT NULL PRIMARY KEY,
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name       TEXT    NOT NULL DEFAULT '',
	kind       TEXT    NOT NULL CHECK (kind IN ('api', 'app-password')),
	-- hash is the keyed HMAC of the secret; lookups go by it.
	hash       TEXT    NOT NULL UNIQUE,
	created_at BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL DEFAULT 0
);

CREATE INDEX api_tokens_user_id ON api_tokens (user_id);

CREATE TABLE gate_sessions (
	id         TEXT    NOT NULL PRIMARY KEY,
	kind       TEXT    NOT NULL CHECK (kind IN ('cookie', 'code')),
	-- Bound to the IdP session: ending it ends every gate it minted.
	session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	user_id    TEXT    NOT NULL,
	host       TEXT    NOT NULL DEFAULT '',
	created_at BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL
);

CREATE INDEX gate_sessions_session_id ON gate_sessions (session_id);
CREATE INDEX gate_sessions_expires_at ON gate_sessions (expires_at);
