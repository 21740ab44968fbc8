package worker

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store/sqlstore"
)

func openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "gh.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestLeaderElection runs two workers on one store: only one runs the job
// at any moment, and when the leader stops the other takes over.
func TestLeaderElection(t *testing.T) {
	st := openStore(t)
	var running, overlaps, runsA, runsB atomic.Int32
	job := func(counter *atomic.Int32) Job {
		return Job{Name: "probe", Every: 20 * time.Millisecond, Run: func(ctx context.Context) (string, error) {
			if running.Add(1) > 1 {
				overlaps.Add(1)
			}
			counter.Add(1)
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			return "", nil
		}}
	}
	a := New(Options{Leases: st, Jobs: []Job{job(&runsA)}, LeaseTTL: 300 * time.Millisecond, Holder: "a"})
	b := New(Options{Leases: st, Jobs: []Job{job(&runsB)}, LeaseTTL: 300 * time.Millisecond, Holder: "b"})
	ctxA, stopA := context.WithCancel(t.Context())
	ctxB, stopB := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctxA) })
	time.Sleep(50 * time.Millisecond) // a leads first
	wg.Go(func() { b.Run(ctxB) })
	time.Sleep(400 * time.Millisecond)
	if !a.Leader() || b.Leader() {
		t.Fatalf("leaders: a=%v b=%v, want a only", a.Leader(), b.Leader())
	}
	if runsB.Load() != 0 || runsA.Load() == 0 {
		t.Fatalf("runs a=%d b=%d", runsA.Load(), runsB.Load())
	}
	// a shuts down and releases: b takes over within one renewal period.
	stopA()
	deadline := time.Now().Add(2 * time.Second)
	for !b.Leader() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !b.Leader() {
		t.Fatal("b did not take over")
	}
	time.Sleep(100 * time.Millisecond)
	stopB()
	wg.Wait()
	if runsB.Load() == 0 {
		t.Error("b never ran the job")
	}
	if overlaps.Load() != 0 {
		t.Errorf("the job ran on two workers at once %d times", overlaps.Load())
	}
	if s := b.Status()["probe"]; s.LastRun.IsZero() || s.Err != nil {
		t.Errorf("status %+v", s)
	}
}

// failingLeases fails every renewal after the first acquisition.
type failingLeases struct{ calls atomic.Int32 }

func (f *failingLeases) AcquireLease(context.Context, string, string, time.Time, time.Duration) (bool, error) {
	if f.calls.Add(1) == 1 {
		return true, nil
	}
	return false, errors.New("database unreachable")
}
func (f *failingLeases) ReleaseLease(context.Context, string, string) error { return nil }

func TestLeaderStopsWhenRenewalFails(t *testing.T) {
	w := New(Options{Leases: &failingLeases{}, LeaseTTL: 150 * time.Millisecond,
		Jobs: []Job{{Name: "x", Every: time.Hour, Run: func(context.Context) (string, error) { return "", nil }}}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(30 * time.Millisecond)
	if !w.Leader() {
		t.Fatal("not leading after the first acquisition")
	}
	// It must give up before the TTL could pass the lease to another.
	time.Sleep(150 * time.Millisecond)
	if w.Leader() {
		t.Error("still leading a TTL after renewals started failing")
	}
}

// hangingLeases grants the lease once, then every renewal hangs until its
// context ends, as a stalled database does.
type hangingLeases struct{ calls atomic.Int32 }

func (h *hangingLeases) AcquireLease(ctx context.Context, _, _ string, _ time.Time, _ time.Duration) (bool, error) {
	if h.calls.Add(1) == 1 {
		return true, nil
	}
	<-ctx.Done()
	return false, ctx.Err()
}
func (h *hangingLeases) ReleaseLease(context.Context, string, string) error { return nil }

// A renewal that hangs must not keep jobs running past the lease: they are
// cancelled 2/3 of a TTL after the last renewal began.
func TestJobsStopBeforeTheLeaseExpiresWhenRenewalHangs(t *testing.T) {
	const ttl = 300 * time.Millisecond
	cancelled := make(chan time.Time, 1)
	w := New(Options{Leases: &hangingLeases{}, LeaseTTL: ttl,
		Jobs: []Job{{Name: "long", Every: time.Hour, Run: func(ctx context.Context) (string, error) {
			<-ctx.Done()
			cancelled <- time.Now()
			return "", ctx.Err()
		}}}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	start := time.Now()
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	select {
	case at := <-cancelled:
		if took := at.Sub(start); took >= ttl {
			t.Fatalf("job cancelled %v after the lease was taken, at or past its TTL %v", took, ttl)
		}
	case <-time.After(5 * ttl):
		t.Fatal("the job was never cancelled while renewals hung")
	}
}

func TestRunJobRecordsPanicsAndErrors(t *testing.T) {
	w := New(Options{Leases: &failingLeases{}})
	w.RunJob(t.Context(), Job{Name: "boom", Run: func(context.Context) (string, error) { panic("bad") }})
	w.RunJob(t.Context(), Job{Name: "err", Run: func(context.Context) (string, error) { return "", errors.New("nope") }})
	st := w.Status()
	if st["boom"].Err == nil || !strings.Contains(st["boom"].Err.Error(), "panic") {
		t.Errorf("panic not recorded: %+v", st["boom"])
	}
	if st["err"].Err == nil {
		t.Errorf("error not recorded: %+v", st["err"])
	}
}

func TestStandardJobs(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	now := time.Now()
	if err := st.AppendRevocations(ctx, []string{"old"}, now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendEvent(ctx, model.AuditEvent{ID: "e-old", Time: now.Add(-100 * 24 * time.Hour), Action: "login.success"}); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendEvent(ctx, model.AuditEvent{ID: "e-new", Time: now, Action: "login.success"}); err != nil {
		t.Fatal(err)
	}
	w := New(Options{Leases: st})
	jobs := StandardJobs(st, Settings{AuditRetention: 90 * 24 * time.Hour})
	names := map[string]bool{}
	for _, j := range jobs {
		names[j.Name] = true
		w.RunJob(ctx, j)
		if s := w.Status()[j.Name]; s.Err != nil {
			t.Errorf("%s: %v", j.Name, s.Err)
		}
	}
	for _, n := range []string{"expired-sessions", "stale-throttles", "expired-recovery-tokens", "expired-gate-sessions", "revocation-feed", "outbox-retention", "oidc-maintenance", "audit-retention"} {
		if !names[n] {
			t.Errorf("missing job %s", n)
		}
	}
	if rs, _ := st.RevocationsAfter(ctx, 0, 10); len(rs) != 0 {
		t.Errorf("old revocations kept: %+v", rs)
	}
	evs, _ := st.ListEvents(ctx, model.AuditFilter{})
	if len(evs) != 1 || evs[0].ID != "e-new" {
		t.Errorf("audit retention left %+v", evs)
	}
	if s := w.Status()["revocation-feed"]; s.Summary != "removed 1 revocation feed entries" {
		t.Errorf("summary %q", s.Summary)
	}
	// Retention 0 keeps audit events for ever: no job.
	for _, j := range StandardJobs(st, Settings{}) {
		if j.Name == "audit-retention" {
			t.Error("audit-retention job present with retention 0")
		}
	}
}

func TestOutboxWebhookRetriesWithBackoff(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	var fail atomic.Bool
	fail.Store(true)
	var got atomic.Value
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Header.Get("X-Gatehouse-Delivery") + " " + string(b))
	}))
	defer hook.Close()
	now := time.Now()
	clock := func() time.Time { return now }
	if err := st.EnqueueOutbox(ctx, model.OutboxMessage{ID: "w1", Kind: model.OutboxWebhook, Target: hook.URL, Body: `{"event":"x"}`, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.EnqueueOutbox(ctx, model.OutboxMessage{ID: "m1", Kind: model.OutboxMail, Target: "a@example.com", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	ob := &Outbox{Store: st, MaxAttempts: 2, Now: clock}

	sent, failed, err := ob.RunOnce(ctx)
	if err != nil || sent != 0 || failed != 2 {
		t.Fatalf("first run: sent %d failed %d err %v", sent, failed, err)
	}
	m, _ := st.GetOutbox(ctx, "w1")
	if m.Attempts != 1 || m.Dead || m.NextAttemptAt.Sub(now) < 24*time.Second || m.NextAttemptAt.Sub(now) > 36*time.Second {
		t.Fatalf("after one failure: %+v (want retry in 30s±20%%)", m)
	}
	// Not due yet: nothing happens.
	if sent, failed, _ := ob.RunOnce(ctx); sent+failed != 0 {
		t.Fatalf("retried before the backoff: sent %d failed %d", sent, failed)
	}
	fail.Store(false)
	now = now.Add(time.Minute)
	sent, failed, err = ob.RunOnce(ctx)
	if err != nil || sent != 1 || failed != 1 {
		t.Fatalf("second run: sent %d failed %d err %v", sent, failed, err)
	}
	if g, _ := got.Load().(string); g != `w1 {"event":"x"}` {
		t.Errorf("webhook received %q", g)
	}
	if m, _ := st.GetOutbox(ctx, "m1"); !m.Dead || m.Attempts != 2 || !strings.Contains(m.LastError, "mail is not configured") {
		t.Errorf("mail without SMTP after max attempts: %+v", m)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 24 * time.Second, 36 * time.Second},
		{2, 48 * time.Second, 72 * time.Second},
		{5, 384 * time.Second, 576 * time.Second},
		{20, 48 * time.Minute, 72 * time.Minute},
	}
	for _, tc := range tests {
		for range 20 {
			if d := Backoff(tc.n); d < tc.min || d > tc.max {
				t.Errorf("Backoff(%d) = %v, want within [%v, %v]", tc.n, d, tc.min, tc.max)
			}
		}
	}
}

func TestBuildMessage(t *testing.T) {
	from := &mail.Address{Name: "Gatehouse", Address: "sso@example.com"}
	to := &mail.Address{Address: "alice@example.com"}
	msg := string(buildMessage(from, to, "Hello\r\nBcc: evil@example.com", "line 1\nline 2"))
	if strings.Contains(msg, "\r\nBcc:") {
		t.Errorf("header injection through the subject:\n%s", msg)
	}
	for _, want := range []string{"From: \"Gatehouse\" <sso@example.com>\r\n", "To: <alice@example.com>\r\n", "\r\n\r\nline 1\r\nline 2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if m := string(buildMessage(from, to, "Grüße", "")); !strings.Contains(m, "Subject: =?utf-8?q?") {
		t.Errorf("non-ASCII subject not encoded:\n%s", m)
	}
}
