package worker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/metrics"
	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// Mailer sends one plain-text mail.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// Outbox delivers queued webhooks and mail. Delivery is at least once: a
// worker that dies after sending but before recording it sends again, so
// webhooks carry an X-Gatehouse-Delivery id receivers can deduplicate on.
type Outbox struct {
	Store store.Outbox
	// HTTP delivers webhooks (default: a client with a 10s timeout).
	HTTP *http.Client
	// Mail sends mail; nil leaves mail messages queued (and logs it once
	// per run) until mail is configured.
	Mail Mailer
	// MaxAttempts before a message is marked dead (default 12).
	MaxAttempts int
	// Batch is how many messages one run claims (default 50).
	Batch   int
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Backoff is the wait after the n-th failed attempt (n >= 1): 30s doubled
// each time, capped at an hour, with ±20% jitter so a receiver that comes
// back is not hit by every message in the same second.
func Backoff(n int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	d = min(d, time.Hour)
	j, err := rand.Int(rand.Reader, big.NewInt(int64(d/5)*2+1))
	if err != nil {
		return d
	}
	return d - d/5 + time.Duration(j.Int64())
}

// Job wraps RunOnce as a worker job.
func (o *Outbox) Job(every time.Duration) Job {
	return Job{Name: "outbox", Every: every, Run: func(ctx context.Context) (string, error) {
		sent, failed, err := o.RunOnce(ctx)
		if err != nil || sent+failed == 0 {
			return "", err
		}
		return fmt.Sprintf("delivered %d, failed %d", sent, failed), nil
	}}
}

// RunOnce claims due messages and tries each once.
func (o *Outbox) RunOnce(ctx context.Context) (sent, failed int, err error) {
	now := o.now()
	batch := o.Batch
	if batch <= 0 {
		batch = 50
	}
	// The claim lease covers delivery time: a worker that dies mid-run
	// leaves the messages due again after it.
	msgs, err := o.Store.ClaimOutbox(ctx, now, 2*time.Minute, batch)
	if err != nil {
		return 0, 0, err
	}
	o.Metrics.OutboxClaimed(len(msgs))
	maxAttempts := o.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 12
	}
	var errs []error
	for _, m := range msgs {
		derr := o.deliver(ctx, m)
		if derr == nil {
			if err := o.Store.MarkOutboxDelivered(ctx, m.ID, o.now()); err != nil {
				errs = append(errs, err)
			}
			sent++
			continue
		}
		failed++
		attempts := m.Attempts + 1
		dead := attempts >= maxAttempts
		if dead {
			o.logger().Warn("giving up on outbox message", "id", m.ID, "kind", m.Kind, "attempts", attempts, "err", derr)
		}
		if err := o.Store.MarkOutboxFailed(ctx, m.ID, attempts, o.now().Add(Backoff(attempts)), derr.Error(), dead); err != nil {
			errs = append(errs, err)
		}
	}
	return sent, failed, errors.Join(errs...)
}

func (o *Outbox) deliver(ctx context.Context, m model.OutboxMessage) error {
	switch m.Kind {
	case model.OutboxWebhook:
		return o.webhook(ctx, m)
	case model.OutboxMail:
		if o.Mail == nil {
			return errors.New("mail is not configured (mail.smtp_host)")
		}
		return o.Mail.Send(ctx, m.Target, m.Subject, m.Body)
	default:
		return fmt.Errorf("unknown outbox kind %q", m.Kind)
	}
}

func (o *Outbox) webhook(ctx context.Context, m model.OutboxMessage) error {
	client := o.HTTP
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Target, strings.NewReader(m.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Gatehouse-Webhook/1")
	req.Header.Set("X-Gatehouse-Delivery", m.ID)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

func (o *Outbox) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Outbox) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// SMTPMailer sends mail with net/smtp: STARTTLS when the server offers
// it, and PLAIN authentication when a username is set (net/smtp refuses
// to send the password over an unencrypted connection to a remote host).
type SMTPMailer struct {
	Host     string
	Port     int // default 587
	Username string
	Password string
	From     string
}

// smtpTimeout bounds one whole delivery: a server that accepts the
// connection and never answers must not stall the outbox (or shutdown).
const smtpTimeout = 60 * time.Second

// Send delivers one mail within smtpTimeout, and gives up at once when ctx
// ends (lease lost, shutdown).
func (s *SMTPMailer) Send(ctx context.Context, to, subject, body string) error {
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return fmt.Errorf("mail.from: %w", err)
	}
	rcpt, err := mail.ParseAddress(to)
	if err != nil {
		return fmt.Errorf("recipient: %w", err)
	}
	port := s.Port
	if port == 0 {
		port = 587
	}
	ctx, cancel := context.WithTimeout(ctx, smtpTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(s.Host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		_ = conn.Close()
		return err
	}
	// Closing the connection is how a cancelled ctx interrupts net/smtp,
	// which has no context of its own.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		_ = conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}); err != nil {
			return err
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, s.Host)); err != nil {
			return err
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt.Address); err != nil {
		return err
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := wc.Write(buildMessage(from, rcpt, subject, body)); err != nil {
		return err
	}
	if err := wc.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// buildMessage formats a minimal RFC 5322 message. Header values are
// stripped of CR and LF so a subject cannot inject headers.
func buildMessage(from, to *mail.Address, subject, body string) []byte {
	clean := func(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", from.String())
	fmt.Fprintf(&b, "To: %s\r\n", to.String())
	fmt.Fprintf(&b, "Subject: %s\r\n", mimeWord(clean(subject)))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n"))
	return []byte(b.String())
}

func mimeWord(s string) string {
	for _, r := range s {
		if r > 127 {
			return mimeQ.Encode("utf-8", s)
		}
	}
	return s
}

var mimeQ = mime.QEncoding
