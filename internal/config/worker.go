package config

import (
	"net/mail"
	"strings"
	"time"
)

// Worker configures the background jobs of `gatehouse serve --role=worker`
// (and of the default role all). Every interval must be positive.
type Worker struct {
	// CleanupInterval is how often expired sessions, sign-in counters,
	// recovery links, gate cookies, OIDC codes and tokens, and the
	// revocation feed are pruned (default 5m).
	CleanupInterval Duration `yaml:"cleanup_interval"`
	// AuditRetention is how long audit events are kept (default 2160h, 90
	// days); 0 keeps them for ever.
	AuditRetention Duration `yaml:"audit_retention"`
	// OutboxInterval is how often queued mail and webhooks are delivered
	// (default 5s).
	OutboxInterval Duration `yaml:"outbox_interval"`
	// OutboxMaxAttempts is how many deliveries are tried, with exponential
	// backoff from 30s up to 1h, before a message is given up (default 12,
	// about a day).
	OutboxMaxAttempts int `yaml:"outbox_max_attempts"`
	// LeaseTTL is the leader lease: when the leading worker dies another
	// takes over after at most this long (default 15s).
	LeaseTTL Duration `yaml:"lease_ttl"`
	// Backup takes scheduled backups when Dir is set.
	Backup WorkerBackup `yaml:"backup"`
}

// WorkerBackup configures scheduled backups taken by the leading worker.
type WorkerBackup struct {
	// Dir receives gatehouse-<time>.backup files; empty disables the job.
	Dir string `yaml:"dir"`
	// Interval between backups (default 24h).
	Interval Duration `yaml:"interval"`
	// Keep is how many backups are kept, newest first (default 7; 0 keeps
	// every one MaxAge allows).
	Keep int `yaml:"keep"`
	// MaxAge removes backups older than this (default 0: by count only).
	MaxAge Duration `yaml:"max_age"`
	// Passphrase encrypts the backups (at least 12 characters).
	Passphrase string `yaml:"passphrase" secret:"true"`
}

// Mail configures outgoing mail (SMTP, STARTTLS when the server offers
// it). Without smtp_host, mail is not sent.
type Mail struct {
	SMTPHost     string `yaml:"smtp_host"`
	SMTPPort     int    `yaml:"smtp_port"` // default 587
	SMTPUsername string `yaml:"smtp_username"`
	SMTPPassword string `yaml:"smtp_password" secret:"true"`
	// From is the sender address, e.g. "Gatehouse <sso@example.com>".
	From string `yaml:"from"`
}

// DefaultWorker is the worker section when the file says nothing.
func DefaultWorker() Worker {
	return Worker{
		CleanupInterval:   Duration(5 * time.Minute),
		AuditRetention:    Duration(90 * 24 * time.Hour),
		OutboxInterval:    Duration(5 * time.Second),
		OutboxMaxAttempts: 12,
		LeaseTTL:          Duration(15 * time.Second),
		Backup:            WorkerBackup{Interval: Duration(24 * time.Hour), Keep: 7},
	}
}

// IsSet reports whether key (a dotted path such as "shutdown_delay") was
// set by the file or the environment rather than left at its default.
func (c *Config) IsSet(key string) bool {
	_, ok := c.src[key]
	return ok
}

func (c *Config) validateWorker(v *validator) {
	w := c.Worker
	v.positive("worker.cleanup_interval", w.CleanupInterval)
	v.positive("worker.outbox_interval", w.OutboxInterval)
	if w.LeaseTTL < Duration(3*time.Second) {
		v.addf("worker.lease_ttl", "must be at least 3s (it is renewed every third of itself)")
	}
	if w.AuditRetention < 0 {
		v.addf("worker.audit_retention", "must not be negative (0 keeps events for ever)")
	}
	if b := w.Backup; b.Dir != "" {
		v.positive("worker.backup.interval", b.Interval)
		if b.Keep < 0 {
			v.addf("worker.backup.keep", "must not be negative")
		}
		if b.MaxAge < 0 {
			v.addf("worker.backup.max_age", "must not be negative")
		}
		if b.Keep == 0 && b.MaxAge == 0 {
			v.addf("worker.backup.keep", "set keep or max_age, or backups pile up for ever")
		}
		if b.Passphrase != "" && len(b.Passphrase) < 12 {
			v.addf("worker.backup.passphrase", "must be at least 12 characters")
		}
	}
	if w.OutboxMaxAttempts < 1 {
		v.addf("worker.outbox_max_attempts", "must be at least 1")
	}
	if c.ShutdownDelay < 0 {
		v.addf("shutdown_delay", "must not be negative")
	}
	m := c.Mail
	if m.SMTPPort < 0 || m.SMTPPort > 65535 {
		v.addf("mail.smtp_port", "%d is not a port", m.SMTPPort)
	}
	if strings.TrimSpace(m.SMTPHost) != "" {
		if _, err := mail.ParseAddress(m.From); err != nil {
			v.addf("mail.from", "%q is not a mail address (needed when mail.smtp_host is set)", m.From)
		}
	}
}
