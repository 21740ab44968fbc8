package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/audit"
	"github.com/gatehouse-sso/gatehouse/internal/backup"
	"github.com/gatehouse-sso/gatehouse/internal/cache"
	"github.com/gatehouse-sso/gatehouse/internal/metrics"
	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/revocation"
	"github.com/gatehouse-sso/gatehouse/internal/store"
	"github.com/gatehouse-sso/gatehouse/internal/worker"
)

// This file is the several-replicas side of the composition root: roles,
// Redis, cross-replica revocation, the worker and metrics. See
// docs/production.md for the operator's view.

// Role selects what `gatehouse serve` runs.
type Role string

// Roles. RoleAll is the single-process default; in Kubernetes, N replicas
// run RoleServer behind a Service and one or two run RoleWorker.
const (
	RoleAll    Role = "all"
	RoleServer Role = "server"
	RoleWorker Role = "worker"
)

// ParseRole accepts all, server and worker ("" is all).
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(strings.TrimSpace(s))); r {
	case "":
		return RoleAll, nil
	case RoleAll, RoleServer, RoleWorker:
		return r, nil
	}
	return "", fmt.Errorf("role %q is not all, server or worker", s)
}

func (r Role) serves() bool { return r != RoleWorker }
func (r Role) works() bool  { return r != RoleServer }

// DefaultDrainDelay is how long a server replica keeps answering after
// SIGTERM with readiness already false, so that the Service and ingress
// remove it before its listener closes.
const DefaultDrainDelay = 5 * time.Second

// DrainDelay is shutdown_delay when set, else DefaultDrainDelay for the
// server role (behind a load balancer) and none for the others (a single
// process on a laptop should stop at once on Ctrl-C).
func DrainDelay(cfgSet bool, cfgDelay time.Duration, role Role) time.Duration {
	if cfgSet {
		return cfgDelay
	}
	if role == RoleServer {
		return DefaultDrainDelay
	}
	return 0
}

// openShared sets up metrics and, when redis_url is set, the Redis client.
// Open calls it before building the services that use them.
func (a *App) openShared(ctx context.Context) error {
	a.Metrics = metrics.New()
	if db, ok := a.Store.(interface{ DB() *sql.DB }); ok {
		a.Metrics.RegisterDB("main", db.DB())
	}
	if a.Config.RedisURL == "" {
		return nil
	}
	c, err := cache.Open(ctx, cache.Options{URL: a.Config.RedisURL, OnHealth: a.Metrics.SetRedisUp, Logger: a.Logger})
	if err != nil {
		return err
	}
	a.Cache = c
	a.Metrics.SetRedisUp(c.Healthy())
	return nil
}

// throttleStore is where brute-force counters live: Redis (with the store
// as fallback) when configured, else the store.
func (a *App) throttleStore() store.Throttle {
	if a.Cache != nil {
		return cache.NewThrottle(a.Cache, a.Store)
	}
	return a.Store
}

// auditSink is the store, with sign-in events also counted in metrics.
func (a *App) auditSink() audit.Appender { return countingAppender{a.Store, a.Metrics} }

type countingAppender struct {
	next audit.Appender
	m    *metrics.Metrics
}

func (c countingAppender) AppendEvent(ctx context.Context, e model.AuditEvent) error {
	switch e.Action {
	case "login.success":
		c.m.SignIn("success")
	case "login.failure":
		c.m.SignIn("failure")
	case "login.locked_out":
		c.m.SignIn("locked_out")
	}
	return c.next.AppendEvent(ctx, e)
}

// wireReplicas connects the session manager to the revocation feed, so
// that sessions ended here are dropped by every replica.
func (a *App) wireReplicas() {
	o := revocation.Options{
		Store:      a.Store,
		Invalidate: a.invalidate,
		OnReceived: a.Metrics.RevocationsReceived,
		Logger:     a.Logger,
	}
	if a.Cache != nil {
		o.Fast, o.FastHealthy = a.Cache, a.Cache.Healthy
	}
	a.Revocations = revocation.New(o)
	a.Sessions.OnRevoke(a.Revocations.Revoked)
}

// invalidate applies revocations from other replicas: the session cache,
// and everything else that registered through OnInvalidate (the
// forward-auth gate cache).
func (a *App) invalidate(ids []string) {
	a.Sessions.Invalidate(ids)
	a.invMu.Lock()
	fns := a.onInvalidate
	a.invMu.Unlock()
	for _, fn := range fns {
		fn(ids)
	}
}

// OnInvalidate registers fn for session ids revoked on other replicas
// (what session.Manager.OnRevoke is for revocations on this one).
func (a *App) OnInvalidate(fn func(ids []string)) {
	a.invMu.Lock()
	a.onInvalidate = append(a.onInvalidate, fn)
	a.invMu.Unlock()
}

// degradation lists what is down but not fatal, for readiness.
func (a *App) degradation() []string {
	var d []string
	if a.Cache != nil && !a.Cache.Healthy() {
		d = append(d, "redis unavailable (serving from the store; counters and revocations fall back)")
	}
	return d
}

// instrument wraps a handler with request metrics, labelled by the
// pattern the mux matched.
func (a *App) instrument(h http.Handler) http.Handler { return a.Metrics.Middleware(h, nil) }

// healthOnly is the worker role's HTTP surface: probes only.
func (a *App) healthOnly() http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"GET /healthz/live", "GET /-/health/live/"} {
		mux.HandleFunc(p, a.live)
	}
	for _, p := range []string{"GET /healthz/ready", "GET /-/health/ready/"} {
		mux.HandleFunc(p, a.readyz)
	}
	mux.HandleFunc("GET /healthz/worker", a.workerStatus)
	return a.instrument(mux)
}

// workerStatus reports the leader state and each job's last run.
func (a *App) workerStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if a.worker == nil {
		_, _ = io.WriteString(w, "no worker in this process\n")
		return
	}
	fmt.Fprintf(w, "holder %s leader %v\n", a.worker.Holder(), a.worker.Leader())
	for name, s := range a.worker.Status() {
		outcome := "ok"
		if s.Err != nil {
			outcome = "error: " + s.Err.Error()
		}
		fmt.Fprintf(w, "%s last_run=%s took=%s %s %s\n", name, s.LastRun.UTC().Format(time.RFC3339), s.Duration, outcome, s.Summary)
	}
}

// newWorker builds the worker with the standard jobs and the outbox.
func (a *App) newWorker() *worker.Worker {
	cfg := a.Config
	set := worker.Settings{
		CleanupEvery:   time.Duration(cfg.Worker.CleanupInterval),
		AuditRetention: time.Duration(cfg.Worker.AuditRetention),
		ThrottleWindow: time.Duration(cfg.Login.FailureWindow),
	}
	if a.oidc != nil {
		set.OIDC = a.oidc
	}
	jobs := worker.StandardJobs(a.Store, set)
	ob := &worker.Outbox{Store: a.Store, MaxAttempts: cfg.Worker.OutboxMaxAttempts, Metrics: a.Metrics, Logger: a.Logger.With("component", "outbox")}
	if m := cfg.Mail; m.SMTPHost != "" {
		ob.Mail = &worker.SMTPMailer{Host: m.SMTPHost, Port: m.SMTPPort, Username: m.SMTPUsername, Password: m.SMTPPassword, From: m.From}
	}
	jobs = append(jobs, ob.Job(time.Duration(cfg.Worker.OutboxInterval)))
	if j, ok := a.backupJob(); ok {
		jobs = append(jobs, j)
	}
	return worker.New(worker.Options{
		Leases:   a.Store,
		Jobs:     jobs,
		LeaseTTL: time.Duration(cfg.Worker.LeaseTTL),
		Metrics:  a.Metrics,
		Logger:   a.Logger,
	})
}

// startBackground runs the loops the role needs until ctx ends and
// returns a function that waits for them to finish: last-seen batching,
// the revocation feed and Redis health and pub/sub for servers; the
// leader-elected jobs for workers.
func (a *App) startBackground(ctx context.Context, role Role) (wait func()) {
	var wg sync.WaitGroup
	if role.serves() {
		wg.Go(func() { a.Sessions.Run(ctx) })
		if a.Revocations != nil {
			wg.Go(func() { a.Revocations.Run(ctx) })
		}
		if a.Cache != nil {
			wg.Go(func() {
				a.Cache.SubscribeRevocations(ctx, func(ids []string) { a.Revocations.Received("redis", ids) })
			})
		}
	}
	if a.Cache != nil {
		wg.Go(func() { a.Cache.Run(ctx) })
	}
	if role.works() {
		a.worker = a.newWorker()
		wg.Go(func() { a.worker.Run(ctx) })
	}
	return wg.Wait
}

// serveMetrics serves /metrics on metrics_listen until ctx ends; an empty
// address disables it.
func (a *App) serveMetrics(ctx context.Context) (wait func(), err error) {
	addr := a.Config.MetricsListen
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.Metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Logger.Warn("metrics listener stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	a.Logger.Info("metrics listening", "listen", ln.Addr().String())
	return func() { <-done }, nil
}

// backupJob takes scheduled backups into worker.backup.dir with retention.
func (a *App) backupJob() (worker.Job, bool) {
	b := a.Config.Worker.Backup
	src, ok := a.Store.(backup.Source)
	if b.Dir == "" || !ok {
		return worker.Job{}, false
	}
	return worker.Job{Name: "scheduled-backup", Every: time.Duration(b.Interval), Run: func(ctx context.Context) (string, error) {
		ctx = audit.WithActor(ctx, "worker", "")
		res, err := backup.RunScheduled(ctx, src, b.Dir, backup.Retention{Count: b.Keep, MaxAge: time.Duration(b.MaxAge)}, time.Now(),
			backup.WriteOptions{Passphrase: b.Passphrase, Generator: "gatehouse worker"})
		if err != nil {
			a.Audit.Record(ctx, model.AuditEvent{Action: "backup.created", Outcome: audit.Failure, Detail: map[string]string{"dir": b.Dir, "error": err.Error()}})
			return "", err
		}
		a.Audit.Record(ctx, model.AuditEvent{Action: "backup.created", Detail: map[string]string{"file": res.Path, "pruned": strconv.Itoa(len(res.Pruned))}})
		return fmt.Sprintf("wrote %s, pruned %d", res.Path, len(res.Pruned)), nil
	}}, true
}
