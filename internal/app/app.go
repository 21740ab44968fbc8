// Package app is the composition root: it turns a validated configuration
// into a store, the services and the HTTP handlers, and runs them. It is the
// only package that knows every other one.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/audit"
	"github.com/gatehouse-sso/gatehouse/internal/authn"
	"github.com/gatehouse-sso/gatehouse/internal/authn/password"
	"github.com/gatehouse-sso/gatehouse/internal/authn/recovery"
	"github.com/gatehouse-sso/gatehouse/internal/cache"
	"github.com/gatehouse-sso/gatehouse/internal/config"
	"github.com/gatehouse-sso/gatehouse/internal/directory"
	"github.com/gatehouse-sso/gatehouse/internal/httpx"
	"github.com/gatehouse-sso/gatehouse/internal/metrics"
	"github.com/gatehouse-sso/gatehouse/internal/oidcop"
	"github.com/gatehouse-sso/gatehouse/internal/redirect"
	"github.com/gatehouse-sso/gatehouse/internal/revocation"
	"github.com/gatehouse-sso/gatehouse/internal/secret"
	"github.com/gatehouse-sso/gatehouse/internal/session"
	"github.com/gatehouse-sso/gatehouse/internal/store"
	"github.com/gatehouse-sso/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-sso/gatehouse/internal/web"
	"github.com/gatehouse-sso/gatehouse/internal/worker"
)

// App holds the services built from one configuration.
type App struct {
	Config    *config.Config
	Logger    *slog.Logger
	Store     store.Store
	Key       secret.Key
	Hasher    *password.Hasher
	Sessions  *session.Manager
	Directory *directory.Service
	Regulator *authn.Regulator
	Auth      *authn.Authenticator
	Audit     *audit.Recorder
	Recovery  *recovery.Service

	oidc *oidcop.Provider // built by Handler; see OIDC()

	// Several replicas (production.go): metrics, the optional Redis client,
	// the cross-replica revocation feed and, in the worker role, the jobs.
	Metrics      *metrics.Metrics
	Cache        *cache.Client
	Revocations  *revocation.Feed
	worker       *worker.Worker
	invMu        sync.Mutex
	onInvalidate []func(ids []string)

	ready atomic.Bool
	// role is what Serve runs; "" before Serve (the CLI).
	role Role
}

// Open connects the store (running migrations) and builds the services.
// The CLI uses it as it is; Serve adds the HTTP side.
func Open(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*App, error) {
	key, created, err := secret.Load(cfg.SecretKey, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	if created {
		logger.Warn("generated a new secret key; keep a copy with your backups", "file", cfg.DataDir+"/"+secret.FileName)
	}
	st, err := sqlstore.Open(ctx, cfg.DatabaseURLOrDefault(), sqlstore.Options{
		MaxOpenConns:     cfg.Database.MaxOpenConns,
		StatementTimeout: time.Duration(cfg.Database.StatementTimeout),
		Logger:           logger,
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	a := &App{Config: cfg, Logger: logger, Store: st, Key: key}
	if err := a.openShared(ctx); err != nil {
		_ = st.Close()
		return nil, err
	}
	a.Audit = audit.New(a.auditSink(), audit.Options{Logger: logger})
	a.Recovery = recovery.New(st, nil)
	a.Hasher = password.NewHasher(password.Options{})
	a.Sessions = session.NewManager(st, session.Options{
		Secret:      key.Derive("session-token"),
		IdleTimeout: time.Duration(cfg.Session.IdleTimeout),
		Lifetime:    time.Duration(cfg.Session.Lifetime),
		Logger:      logger,
	})
	a.Directory = directory.New(directory.Options{Store: st, Hasher: a.Hasher, Revoker: a.Sessions, Audit: a.Audit, Logger: logger})
	a.Regulator = authn.NewRegulator(a.throttleStore(), authn.RegulatorOptions{
		MaxFailures:   cfg.Login.MaxFailures,
		IPMaxFailures: cfg.Login.IPMaxFailures,
		Window:        time.Duration(cfg.Login.FailureWindow),
		Lockout:       time.Duration(cfg.Login.Lockout),
		Logger:        logger,
	})
	a.Auth = authn.NewAuthenticator(st, a.Hasher, a.Regulator, authn.Options{Logger: logger})
	a.wireReplicas()
	return a, nil
}

// Close releases the store and the Redis client.
func (a *App) Close() error {
	if a.Cache != nil {
		_ = a.Cache.Close()
	}
	return a.Store.Close()
}

// Bootstrap creates the first administrator when the directory is empty and
// writes its one-time password to out (never to the log).
func (a *App) Bootstrap(ctx context.Context, out io.Writer) error {
	b := a.Config.Bootstrap
	pw, generated := b.Password, false
	if pw == "" {
		pw, generated = RandomPassword(20), true
	}
	created, err := a.Directory.Bootstrap(ctx, b.AdminUsername, b.AdminGroup, pw)
	if err != nil || !created {
		return err
	}
	a.Logger.Info("bootstrap administrator created", "user", b.AdminUsername, "group", b.AdminGroup)
	if generated {
		fmt.Fprintf(out, "\n  Bootstrap administrator created.\n    sign in at: %s/login\n    username:   %s\n    password:   %s\n  This password is shown once. Change it after signing in.\n\n",
			a.Config.ExternalURL, b.AdminUsername, pw)
	}
	return nil
}

// RandomPassword returns n characters from an unambiguous alphabet.
func RandomPassword(n int) string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// Handler builds the HTTP handler tree.
func (a *App) Handler() (http.Handler, error) {
	cfg := a.Config
	ext := cfg.ExternalURLParsed()
	secure := cfg.Secure()
	csrf := httpx.NewCSRF(csrfCookieName(secure), secure)
	ips := httpx.NewIPResolver(cfg.TrustedProxyPrefixes())
	redirects := redirect.New(ext, cfg.CookieDomain, nil)

	pages, err := web.New(web.Options{
		Auth:       a.Auth,
		Sessions:   a.Sessions,
		Directory:  a.Directory,
		Redirects:  redirects,
		CSRF:       csrf,
		IPs:        ips,
		CookieName: cfg.Session.CookieName,
		Secure:     secure,
		Lifetime:   time.Duration(cfg.Session.Lifetime),
		Logger:     a.Logger,
		Audit:      a.Audit,
		Recovery:   a.Recovery,
		Unlock:     a.Regulator.Unlock,
	})
	if err != nil {
		return nil, err
	}
	browser := http.NewServeMux()
	pages.Register(browser)

	root := http.NewServeMux()
	for _, p := range []string{"GET /healthz/live", "GET /-/health/live/"} {
		root.HandleFunc(p, a.live)
	}
	for _, p := range []string{"GET /healthz/ready", "GET /-/health/ready/"} {
		root.HandleFunc(p, a.readyz)
	}
	if err := a.registerOIDC(root, browser, pages); err != nil {
		return nil, err
	}
	root.Handle("/", httpx.SecurityHeaders(csrf.Middleware(metrics.Route(browser))))

	var h http.Handler = metrics.Route(root)
	h = httpx.AccessLog(a.Logger)(h)
	h = httpx.Recover(a.Logger)(h)
	h = httpx.RequestID(h)
	h = a.oidc.FastPath(h)
	if h, err = a.withForwardAuth(root, h, ips, redirects); err != nil {
		return nil, err
	}
	return h, nil
}

func (a *App) live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !a.ready.Load() {
		http.Error(w, "starting or stopping", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.Store.Ping(ctx); err != nil {
		a.Logger.Warn("readiness: store does not answer", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	// Degraded is still ready: a Redis outage must not take replicas out
	// of the load balancer.
	if d := a.degradation(); len(d) > 0 {
		_, _ = io.WriteString(w, "ok (degraded: "+strings.Join(d, "; ")+")\n")
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// ServeOptions tunes Serve.
type ServeOptions struct {
	// Out receives the one-time bootstrap password.
	Out io.Writer
	// DrainDelay is how long readiness reports false before the listener
	// closes, so load balancers stop sending new requests first.
	DrainDelay time.Duration
	// ShutdownTimeout bounds how long in-flight requests may take to finish.
	ShutdownTimeout time.Duration
	// Listening, if set, is called with the bound address once serving.
	Listening func(addr net.Addr)
	// Role is what this process runs (default RoleAll).
	Role Role
}

// Serve runs the server until ctx ends, then shuts down gracefully.
func (a *App) Serve(ctx context.Context, o ServeOptions) error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.Role == "" {
		o.Role = RoleAll
	}
	a.role = o.Role
	handler := a.healthOnly()
	if !o.Role.serves() {
		// Serving replicas reconcile clients when they build the provider;
		// a worker-only process must too, as the one that deletes.
		if err := a.ReconcileOIDCClients(ctx); err != nil {
			return fmt.Errorf("OIDC clients: %w", err)
		}
	}
	if o.Role.serves() {
		if err := a.Bootstrap(ctx, o.Out); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		if err := a.ReconcileDirectory(ctx); err != nil {
			return fmt.Errorf("declared groups and users: %w", err)
		}
		h, err := a.Handler()
		if err != nil {
			return err
		}
		handler = h // instrumented by Handler
	}
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Logger.Handler(), slog.LevelWarn),
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	waitBG := a.startBackground(bg, o.Role)
	waitMetrics, err := a.serveMetrics(bg)
	if err != nil {
		_ = ln.Close()
		stopBG()
		waitBG()
		return err
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.ready.Store(true)
	a.Logger.Info("gatehouse ready", "role", string(o.Role), "listen", ln.Addr().String(), "external_url", a.Config.ExternalURL)
	fmt.Fprintf(o.Out, "Gatehouse is listening on %s — open %s\n", ln.Addr(), a.Config.ExternalURL)
	if o.Listening != nil {
		o.Listening(ln.Addr())
	}

	select {
	case err := <-errc:
		stopBG()
		waitBG()
		waitMetrics()
		return err
	case <-ctx.Done():
	}
	a.Logger.Info("shutting down: readiness off, draining requests")
	a.ready.Store(false)
	time.Sleep(o.DrainDelay)
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	stopBG()
	waitBG()
	waitMetrics()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.Logger.Info("stopped")
	return nil
}

// csrfCookieName uses the __Host- prefix on https so that an app on a
// sibling subdomain cannot plant its own token for Gatehouse's forms.
func csrfCookieName(secure bool) string {
	if secure {
		return "__Host-gatehouse_csrf"
	}
	return "gatehouse_csrf"
}
