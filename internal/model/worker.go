package model

import "time"

// Revocation is one entry of the store-backed revocation feed: a session
// ended on some replica, which every other replica drops from its cache.
type Revocation struct {
	// Seq orders the feed; readers remember the highest they have seen.
	Seq       int64
	SessionID string
	At        time.Time
}

// Outbox message kinds.
const (
	OutboxWebhook = "webhook" // an HTTP POST of Body to Target
	OutboxMail    = "mail"    // a mail to Target (an address); Subject and Body
)

// OutboxMessage is an outgoing mail or webhook waiting in the durable
// outbox until a worker delivers it.
type OutboxMessage struct {
	ID      string
	Kind    string // OutboxWebhook or OutboxMail
	Target  string // URL or mail address
	Subject string // mail only
	// Body is the webhook's JSON document or the mail's plain text.
	Body string
	// Attempts counts failed deliveries so far.
	Attempts int
	// NextAttemptAt is when the message is due (again).
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	// DeliveredAt is set once delivered; Dead once the worker gave up.
	DeliveredAt time.Time
	Dead        bool
}
