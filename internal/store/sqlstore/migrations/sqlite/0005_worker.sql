-- 0005: several replicas and the worker: the revocation feed, leader
-- election leases and the outbox of mail and webhooks.

-- One row per ended session, read by every replica to drop it from its
-- cache; pruned by the worker after an hour.
CREATE TABLE revocations (
	seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	session_id TEXT    NOT NULL,
	at         INTEGER NOT NULL
) STRICT;

CREATE INDEX revocations_at ON revocations (at);

CREATE TABLE leases (
	name       TEXT    NOT NULL PRIMARY KEY,
	holder     TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE outbox (
	id              TEXT    NOT NULL PRIMARY KEY,
	kind            TEXT    NOT NULL,
	target          TEXT    NOT NULL,
	subject         TEXT    NOT NULL DEFAULT '',
	body            TEXT    NOT NULL DEFAULT '',
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	last_error      TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	delivered_at    INTEGER NOT NULL DEFAULT 0,
	dead            INTEGER NOT NULL DEFAULT 0 CHECK (dead IN (0, 1))
) STRICT;

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at = 0 AND dead = 0;
