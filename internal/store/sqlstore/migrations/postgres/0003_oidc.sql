-- 0003: OpenID provider: clients, authorization requests and codes, tokens,
-- signing keys, consents and device authorizations. Lists and rarely
-- queried attributes live in a JSON "data" column; what is searched or
-- updated atomically has a column of its own.

CREATE TABLE oidc_clients (
	client_id          TEXT    NOT NULL PRIMARY KEY,
	app_slug           TEXT    NOT NULL,
	data               TEXT    NOT NULL,
	-- secret_hash is the keyed HMAC of the client secret, never the secret.
	secret_hash        TEXT    NOT NULL DEFAULT '',
	secret_from_config BOOLEAN NOT NULL DEFAULT FALSE,
	created_at         BIGINT  NOT NULL,
	updated_at         BIGINT  NOT NULL
);

CREATE TABLE oidc_auth_requests (
	id         TEXT    NOT NULL PRIMARY KEY,
	client_id  TEXT    NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
	-- code_hash is the SHA-256 of the issued code; NULL until one is issued.
	code_hash  TEXT    UNIQUE,
	data       TEXT    NOT NULL,
	created_at BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL
);

CREATE INDEX oidc_auth_requests_expires_at ON oidc_auth_requests (expires_at);

CREATE TABLE oidc_tokens (
	-- Refresh tokens by the SHA-256 of their value, access tokens by jti.
	id         TEXT    NOT NULL PRIMARY KEY,
	kind       TEXT    NOT NULL CHECK (kind IN ('access', 'refresh')),
	family_id  TEXT    NOT NULL,
	client_id  TEXT    NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
	subject    TEXT    NOT NULL,
	session_id TEXT    NOT NULL DEFAULT '',
	data       TEXT    NOT NULL,
	created_at BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL,
	used_at    BIGINT  NOT NULL DEFAULT 0,
	revoked_at BIGINT  NOT NULL DEFAULT 0
);

CREATE INDEX oidc_tokens_family_id ON oidc_tokens (family_id);
CREATE INDEX oidc_tokens_subject ON oidc_tokens (subject);
CREATE INDEX oidc_tokens_expires_at ON oidc_tokens (expires_at);

CREATE TABLE oidc_signing_keys (
	id         TEXT    NOT NULL PRIMARY KEY,
	algorithm  TEXT    NOT NULL,
	-- private is the PKCS#8 key sealed with the secret key, base64.
	private    TEXT    NOT NULL,
	created_at BIGINT  NOT NULL,
	active_at  BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE oidc_consents (
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id  TEXT    NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
	scopes     TEXT    NOT NULL,
	granted_at BIGINT  NOT NULL,
	PRIMARY KEY (user_id, client_id)
);

CREATE TABLE oidc_device_auths (
	-- id is the SHA-256 of the device code.
	id         TEXT    NOT NULL PRIMARY KEY,
	user_code  TEXT    NOT NULL UNIQUE,
	client_id  TEXT    NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
	data       TEXT    NOT NULL,
	created_at BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL
);

CREATE INDEX oidc_device_auths_expires_at ON oidc_device_auths (expires_at);
