-- 0004: the audit record and one-time recovery links.

CREATE TABLE audit_events (
	id        TEXT    NOT NULL PRIMARY KEY,
	at        BIGINT  NOT NULL,
	action    TEXT    NOT NULL,
	actor     TEXT    NOT NULL DEFAULT '',
	actor_id  TEXT    NOT NULL DEFAULT '',
	subject   TEXT    NOT NULL DEFAULT '',
	client_ip TEXT    NOT NULL DEFAULT '',
	outcome   TEXT    NOT NULL DEFAULT '',
	-- detail is a JSON object of strings.
	detail    TEXT    NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_actor ON audit_events (actor);
CREATE INDEX audit_events_subject ON audit_events (subject);

CREATE TABLE recovery_tokens (
	id         TEXT    NOT NULL PRIMARY KEY,
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_by TEXT    NOT NULL DEFAULT '',
	created_at BIGINT  NOT NULL,
	expires_at BIGINT  NOT NULL
);
