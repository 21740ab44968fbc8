package forwardauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/apitoken"
	"github.com/gatehouse-sso/gatehouse/internal/httpx"
	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/policy"
	"github.com/gatehouse-sso/gatehouse/internal/redirect"
	"github.com/gatehouse-sso/gatehouse/internal/session"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// fakeStore is an in-memory GateSessions + APITokens with a query counter.
type fakeStore struct {
	mu      sync.Mutex
	gates   map[string]model.GateSession
	tokens  map[string]model.APIToken
	queries int
}

func newFakeStore() *fakeStore {
	return &fakeStore{gates: map[string]model.GateSession{}, tokens: map[string]model.APIToken{}}
}

func (f *fakeStore) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.queries }

func (f *fakeStore) CreateGateSession(_ context.Context, g model.GateSession) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries++
	f.gates[g.ID] = g
	return nil
}
func (f *fakeStore) GetGateSession(_ context.Context, id string) (model.GateSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries++
	g, ok := f.gates[id]
	if !ok {
		return g, store.ErrNotFound
	}
	return g, nil
}
func (f *fakeStore) TakeGateSession(_ context.Context, id string, kind model.GateKind) (model.GateSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries++
	g, ok := f.gates[id]
	if !ok || g.Kind != kind {
		return g, store.ErrNotFound
	}
	delete(f.gates, id)
	return g, nil
}
func (f *fakeStore) DeleteExpiredGateSessions(context.Context, time.Time) (int, error) { return 0, nil }
func (f *fakeStore) deleteSessionGates(sid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, g := range f.gates {
		if g.SessionID == sid {
			delete(f.gates, k)
		}
	}
}

func (f *fakeStore) CreateAPIToken(_ context.Context, t model.APIToken) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[t.Hash] = t
	return nil
}
func (f *fakeStore) GetAPITokenByHash(_ context.Context, h string) (model.APIToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries++
	t, ok := f.tokens[h]
	if !ok {
		return t, store.ErrNotFound
	}
	return t, nil
}
func (f *fakeStore) ListAPITokens(context.Context, string) ([]model.APIToken, error) { return nil, nil }
func (f *fakeStore) DeleteAPIToken(_ context.Context, id string) (model.APIToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for h, t := range f.tokens {
		if t.ID == id {
			delete(f.tokens, h)
			return t, nil
		}
	}
	return model.APIToken{}, store.ErrNotFound
}

// fakeSessions hands out sessions by token "tok-<user>".
type fakeSessions struct {
	mu       sync.Mutex
	byID     map[string]model.Session
	st       *fakeStore
	onRevoke func([]string)
}

func (f *fakeSessions) add(token string, s model.Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byID[s.ID] = s
	f.byID["token:"+token] = s
}
func (f *fakeSessions) Lookup(_ context.Context, token string) (model.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.byID["token:"+token]
	if !ok {
		return s, session.ErrNoSession
	}
	if _, live := f.byID[s.ID]; !live {
		return model.Session{}, session.ErrNoSession
	}
	return s, nil
}
func (f *fakeSessions) LookupID(_ context.Context, id string) (model.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.byID[id]
	if !ok {
		return s, session.ErrNoSession
	}
	return s, nil
}
func (f *fakeSessions) RevokeUser(_ context.Context, userID string) error {
	f.mu.Lock()
	var ids []string
	for k, s := range f.byID {
		if s.UserID == userID && k == s.ID {
			ids = append(ids, k)
			delete(f.byID, k)
		}
	}
	f.mu.Unlock()
	for _, id := range ids {
		f.st.deleteSessionGates(id)
	}
	if f.onRevoke != nil {
		f.onRevoke(ids)
	}
	return nil
}

type fakeDir struct {
	users  map[string]model.User
	groups map[string][]string
	calls  int
	mu     sync.Mutex
}

func (d *fakeDir) GetUser(_ context.Context, id string) (model.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	u, ok := d.users[id]
	if !ok {
		return u, store.ErrNotFound
	}
	return u, nil
}
func (d *fakeDir) GroupNames(_ context.Context, id string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.groups[id], nil
}

type fakeThrottle struct {
	mu    sync.Mutex
	fails map[string]int
}

func (t *fakeThrottle) Check(_ context.Context, username, ip string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fails["ip:"+ip] >= 3 {
		return errors.New("locked")
	}
	return nil
}
func (t *fakeThrottle) Fail(_ context.Context, username, ip string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fails["ip:"+ip]++
	return nil
}

// env is a Handler over fakes with alice (media), bob (no groups).
type env struct {
	h        *Handler
	st       *fakeStore
	sess     *fakeSessions
	dir      *fakeDir
	tokens   *apitoken.Service
	throttle *fakeThrottle
	mux      *http.ServeMux
}

var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newEnv(t testing.TB) *env {
	t.Helper()
	tab, err := policy.Compile(policy.Spec{Apps: []policy.AppSpec{
		{Slug: "sonarr", Hosts: []string{"sonarr.homelab.local"}, SkipPaths: []string{"^/api/"}, AllowGroups: []string{"media"}},
		{Slug: "prometheus", Hosts: []string{"prometheus.homelab.local"}},
		{Slug: "all", Hosts: []string{"*.homelab.local"}},
		{Slug: "outside", Hosts: []string{"media.example.org"}},
		{Slug: "lan", Hosts: []string{"lan.homelab.local"}, Rules: []policy.RuleSpec{{Networks: []string{"10.0.0.0/8"}, Policy: policy.Bypass}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	st := newFakeStore()
	e := &env{st: st, sess: &fakeSessions{byID: map[string]model.Session{}, st: st},
		dir: &fakeDir{
			users: map[string]model.User{
				"u-alice": {ID: "u-alice", Username: "alice", Email: "alice@example.com", DisplayName: "Alice L"},
				"u-bob":   {ID: "u-bob", Username: "bob"},
			},
			groups: map[string][]string{"u-alice": {"media", "users"}},
		},
		throttle: &fakeThrottle{fails: map[string]int{}},
	}
	now := func() time.Time { return testNow }
	e.tokens = apitoken.New(st, apitoken.Options{Key: []byte("0123456789abcdef0123456789abcdef"), Now: now})
	ext, _ := url.Parse("https://auth.homelab.local")
	e.h, err = New(Options{
		Policy: tab,
		Apps: []AppOptions{
			{},
			{AllowBearer: true, AllowBasic: true, Headers: RemoteHeaders, BearerClients: []string{"grafana"}},
			{Headers: AuthentikHeaders},
			{},
			{},
		},
		Sessions:          e.sess,
		Directory:         e.dir,
		Gates:             st,
		Tokens:            e.tokens,
		Verifiers:         []TokenVerifier{oauthTokens{"oauth-grafana-alice": {"u-alice", "grafana"}, "oauth-wiki-alice": {"u-alice", "wiki"}}},
		Throttle:          e.throttle,
		IPs:               httpx.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}),
		Redirects:         redirect.New(ext, "homelab.local", []string{"media.example.org"}),
		ExternalURL:       ext,
		CookieDomain:      "homelab.local",
		SessionCookieName: "gatehouse_session",
		Secure:            true,
		GateKey:           []byte("gate-key-gate-key-gate-key-12345"),
		Logger:            slog.New(slog.DiscardHandler),
		Now:               now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.sess.onRevoke = e.h.SessionsRevoked
	e.mux = http.NewServeMux()
	e.h.Register(e.mux)
	for _, u := range []string{"alice", "bob"} {
		e.sess.add("tok-"+u, model.Session{ID: "sid-" + u, UserID: "u-" + u, Level: model.LevelPassword, ExpiresAt: testNow.Add(time.Hour)})
	}
	return e
}

// gateFor signs user in through /gate/start and returns the gate cookie.
func (e *env) gateFor(t testing.TB, user string) string {
	t.Helper()
	r := httptest.NewRequest("GET", "https://auth.homelab.local/gate/start?rd="+url.QueryEscape("https://sonarr.homelab.local/"), nil)
	r.Header.Set("Cookie", "gatehouse_session=tok-"+user)
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	if w.Code != http.StatusFound {
		t.Fatalf("start: %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == "gatehouse_gate" {
			return c.Value
		}
	}
	t.Fatalf("start set no gate cookie: %v", w.Header())
	return ""
}

// nginx asks the nginx endpoint about url with the given extra headers.
func (e *env) nginx(url string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "http://127.0.0.1:9000/api/authz/nginx", nil)
	r.Header.Set("X-Original-URL", url)
	r.Header.Set("X-Original-Method", "GET")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// oauthTokens stands in for the OIDC provider's access-token check (the
// real one is tested in internal/oidcop and end to end).
type oauthTokens map[string][2]string

func (o oauthTokens) VerifyBearer(_ context.Context, token string) (string, string, bool, error) {
	v, ok := o[token]
	return v[0], v[1], ok, nil
}
