package oidcop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// storage implements op.Storage and the optional interfaces we support
// over the SQL store. Every piece of a flow in progress is in the store, so
// any replica can serve any step.
type storage struct {
	p   *Provider
	log *slog.Logger

	mu      sync.RWMutex
	clients map[string]cachedClient
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.DeviceAuthorizationStorage     = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
)

// codeLifetime bounds the time between issuing a code and redeeming it;
// replayRetention is how long a redeemed code is remembered so that a
// replay can revoke what it issued.
const (
	codeLifetime    = 2 * time.Minute
	replayRetention = 24 * time.Hour
)

var (
	errCodeReplayed    = errors.New("authorization code already used")
	errRefreshReused   = errors.New("refresh token reused; its family is revoked")
	errTokenInactive   = errors.New("token expired or revoked")
	errNoAccess        = errors.New("user is not allowed to use this client")
	errBadClientSecret = errors.New("invalid client secret")
)

func (s *storage) now() time.Time { return s.p.o.Now().UTC() }

func (s *storage) st() Store { return s.p.o.Store }

// ---------------------------------------------------------------- clients

// clientCacheTTL bounds how long a replica keeps using a client it read:
// every token request looks its client up two or three times, and clients
// change only at start (reconcile) or with `gatehouse app rotate-secret`,
// which thus takes effect on running servers within this time.
const clientCacheTTL = 2 * time.Second

type cachedClient struct {
	m       model.OIDCClient
	fetched time.Time
}

func (s *storage) client(ctx context.Context, clientID string) (*client, error) {
	now := time.Now()
	s.mu.RLock()
	cc, ok := s.clients[clientID]
	s.mu.RUnlock()
	if ok && now.Sub(cc.fetched) < clientCacheTTL {
		return &client{m: cc.m, p: s.p}, nil
	}
	m, err := s.st().GetOIDCClient(ctx, clientID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("unknown client %q", clientID)
		}
		return nil, oidc.ErrServerError().WithParent(err)
	}
	s.mu.Lock()
	if len(s.clients) > 10000 {
		clear(s.clients) // bounded: client ids come from requests
	}
	s.clients[clientID] = cachedClient{m: m, fetched: now}
	s.mu.Unlock()
	return &client{m: m, p: s.p}, nil
}

// GetClientByClientID implements op.OPStorage.
func (s *storage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	c, err := s.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.OPStorage. The library calls it
// before it touches the code or refresh token, so a failed attempt (say
// x/oauth2 trying Basic first) leaves the code usable.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, clientID, secret string) error {
	_, err := s.authenticate(ctx, clientID, secret)
	return err
}

func (s *storage) authenticate(ctx context.Context, clientID, secret string) (*client, error) {
	c, err := s.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if c.m.Public || !s.p.o.SecretHasher.Verify(secret, c.m.SecretHash) {
		return nil, errBadClientSecret
	}
	return c, nil
}

// ClientCredentials implements op.ClientCredentialsStorage.
func (s *storage) ClientCredentials(ctx context.Context, clientID, clientSecret string) (op.Client, error) {
	c, err := s.authenticate(ctx, clientID, clientSecret)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ClientCredentialsTokenRequest implements op.ClientCredentialsStorage.
// The library checks scopes only at /authorize; here a client could
// otherwise write any scope into its own token.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	if err := checkScopes(scopes); err != nil {
		return nil, err
	}
	return &clientCredentialsRequest{clientID: clientID, scopes: scopes}, nil
}

// knownScopes are the scopes Gatehouse grants: the OIDC standard ones and
// groups. Anything else is refused, not passed through into a token.
var knownScopes = map[string]bool{
	oidc.ScopeOpenID: true, oidc.ScopeProfile: true, oidc.ScopeEmail: true,
	oidc.ScopeOfflineAccess: true, ScopeGroups: true,
}

func checkScopes(scopes []string) error {
	for _, sc := range scopes {
		if !knownScopes[sc] {
			return oidc.ErrInvalidScope().WithDescription("scope %q is not supported", sc)
		}
	}
	return nil
}

// ---------------------------------------------------------------- auth requests

// CreateAuthRequest implements op.AuthStorage. The library has checked the
// client, redirect URI, response type and scopes; PKCE policy is ours.
func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := s.client(ctx, req.ClientID)
	if err != nil {
		return nil, err
	}
	switch {
	case req.CodeChallenge == "" && c.m.Public:
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required for public clients: send code_challenge with code_challenge_method=S256")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		// An absent method means plain (RFC 7636 §4.3): refused too.
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case !c.m.HasGrant(model.GrantAuthorizationCode):
		return nil, oidc.ErrUnauthorizedClient().WithDescription("client may not use the authorization code grant")
	}
	scopes := slices.Clone(req.Scopes)
	if claimsAskGroups(ctx) && !slices.Contains(scopes, ScopeGroups) {
		scopes = append(scopes, ScopeGroups)
	}
	maxAge := int64(-1)
	if req.MaxAge != nil {
		maxAge = int64(*req.MaxAge)
	}
	now := s.now()
	ar := model.AuthRequest{
		ID: randomString(24), ClientID: c.m.ClientID, RedirectURI: req.RedirectURI, Scopes: scopes,
		State: req.State, Nonce: req.Nonce, ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt: req.Prompt, MaxAge: maxAge, ClaimsGroups: claimsAskGroups(ctx),
		CreatedAt: now, ExpiresAt: now.Add(s.p.o.AuthRequestLifetime),
	}
	if err := s.st().CreateAuthRequest(ctx, ar); err != nil {
		return nil, err
	}
	return &authRequest{m: ar}, nil
}

func (s *storage) authRequest(ctx context.Context, id string) (model.AuthRequest, error) {
	ar, err := s.st().GetAuthRequest(ctx, id)
	if err != nil {
		return model.AuthRequest{}, err
	}
	if !s.now().Before(ar.ExpiresAt) || !ar.RedeemedAt.IsZero() {
		return model.AuthRequest{}, fmt.Errorf("auth request expired or used: %w", store.ErrNotFound)
	}
	return ar, nil
}

// AuthRequestByID implements op.AuthStorage.
func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	ar, err := s.authRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	return &authRequest{m: ar}, nil
}

// AuthRequestByCode implements op.AuthStorage. It only reads: the code is
// spent when tokens are created, after the client is authenticated and
// PKCE verified. A code seen again after it was spent is a replay: the
// tokens it issued are revoked (RFC 6749 §4.1.2).
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	ar, err := s.st().GetAuthRequestByCode(ctx, sha256Hex(code))
	if err != nil {
		return nil, err
	}
	if !ar.RedeemedAt.IsZero() {
		s.revokeReplay(ctx, ar)
		return nil, errCodeReplayed
	}
	if !s.now().Before(ar.ExpiresAt) || !ar.Done {
		return nil, errors.New("code expired")
	}
	return &authRequest{m: ar}, nil
}

func (s *storage) revokeReplay(ctx context.Context, ar model.AuthRequest) {
	n, err := s.st().RevokeOIDCFamily(ctx, ar.FamilyID, s.now())
	s.log.Warn("authorization code replayed: revoked the tokens it issued", "client", ar.ClientID, "user", ar.UserID, "revoked", n, "err", err)
}

// SaveAuthCode implements op.AuthStorage: one code per request, ever.
func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	_, err := s.st().UpdateAuthRequest(ctx, id, func(ar *model.AuthRequest) error {
		if ar.CodeHash != "" || !ar.Done {
			return errors.New("a code was already issued for this request")
		}
		ar.CodeHash = sha256Hex(code)
		ar.ExpiresAt = s.now().Add(codeLifetime)
		return nil
	})
	return err
}

// DeleteAuthRequest implements op.AuthStorage. The library calls it once
// tokens are issued; a redeemed request is kept until its retention ends so
// a replayed code is recognised.
func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	ar, err := s.st().GetAuthRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !ar.RedeemedAt.IsZero() {
		return nil
	}
	if err := s.st().DeleteAuthRequest(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// redeem spends the code of ar atomically and returns the family its
// tokens belong to. The loser of two concurrent exchanges sees a replay.
func (s *storage) redeem(ctx context.Context, ar *authRequest) (string, error) {
	family := randomString(16)
	var replayed model.AuthRequest
	_, err := s.st().UpdateAuthRequest(ctx, ar.m.ID, func(m *model.AuthRequest) error {
		if !m.RedeemedAt.IsZero() {
			replayed = *m
			return errCodeReplayed
		}
		now := s.now()
		m.RedeemedAt, m.FamilyID, m.ExpiresAt = now, family, now.Add(replayRetention)
		return nil
	})
	if errors.Is(err, errCodeReplayed) {
		s.revokeReplay(ctx, replayed)
		return "", oidc.ErrInvalidGrant().WithDescription("code already used")
	}
	if err != nil {
		return "", err
	}
	ar.m.FamilyID = family
	return family, nil
}

// ---------------------------------------------------------------- tokens

// grant is what every token request has in common once resolved.
type grant struct {
	client    *client
	subject   string
	family    string
	sessionID string
	scopes    []string
	audience  []string
	amr       []string
	authTime  time.Time
	// how names the grant for the audit record.
	how string
}

// resolve turns any token request the library hands us into a grant,
// spending an authorization code or rotating a refresh token on the way.
func (s *storage) resolve(ctx context.Context, req op.TokenRequest, currentRefresh string) (grant, error) {
	c, err := s.client(ctx, clientIDOf(req))
	if err != nil {
		return grant{}, err
	}
	g := grant{client: c, subject: req.GetSubject(), scopes: req.GetScopes(), audience: req.GetAudience()}
	switch r := req.(type) {
	case *authRequest:
		if g.family, err = s.redeem(ctx, r); err != nil {
			return grant{}, err
		}
		g.sessionID, g.amr, g.authTime, g.how = r.m.SessionID, r.GetAMR(), r.m.AuthTime, "authorization_code"
	case *refreshRequest:
		used, err := s.st().UseRefreshToken(ctx, sha256Hex(currentRefresh), s.now())
		if errors.Is(err, store.ErrConflict) {
			// Another exchange won the race with this very token: a reuse.
			s.revokeFamily(ctx, used, "concurrent refresh token reuse")
			return grant{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
		}
		if err != nil {
			return grant{}, oidc.ErrInvalidGrant().WithParent(err)
		}
		g.family, g.sessionID, g.amr, g.authTime, g.how = used.FamilyID, used.SessionID, used.AMR, used.AuthTime, "refresh_token"
	case *clientCredentialsRequest:
		g.family, g.how = randomString(16), "client_credentials"
	case *op.DeviceAuthorizationState:
		g.family, g.amr, g.authTime, g.how = randomString(16), amr(r.Subject), r.AuthTime, "device_code"
	default:
		return grant{}, fmt.Errorf("unsupported token request %T", req)
	}
	return g, nil
}

func clientIDOf(req op.TokenRequest) string {
	switch r := req.(type) {
	case interface{ GetClientID() string }:
		return r.GetClientID()
	case *clientCredentialsRequest:
		return r.clientID
	}
	return ""
}

func (s *storage) newAccessToken(ctx context.Context, g grant) (string, time.Time, error) {
	now := s.now()
	t := model.OIDCToken{
		ID: randomString(18), Kind: model.TokenAccess, FamilyID: g.family, ClientID: g.client.m.ClientID,
		Subject: g.subject, SessionID: g.sessionID, Scopes: g.scopes, Audience: g.audience, AMR: g.amr,
		AuthTime: g.authTime, CreatedAt: now, ExpiresAt: now.Add(g.client.accessTokenLifetime()),
	}
	if err := s.st().CreateOIDCToken(ctx, t); err != nil {
		return "", time.Time{}, err
	}
	return t.ID, t.ExpiresAt, nil
}

// CreateAccessToken implements op.AuthStorage.
func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	g, err := s.resolve(ctx, req, "")
	if err != nil {
		return "", time.Time{}, err
	}
	id, exp, err := s.newAccessToken(ctx, g)
	if err == nil {
		s.issued(ctx, g, false)
	}
	return id, exp, err
}

// issued records a token endpoint success in the audit log and metrics.
func (s *storage) issued(ctx context.Context, g grant, refresh bool) {
	detail := map[string]string{"grant": g.how, "client": g.client.m.ClientID}
	if refresh {
		detail["refresh_token"] = "issued"
	}
	s.p.record(ctx, model.AuditEvent{Action: "token.issued", Actor: "client:" + g.client.m.ClientID, Subject: s.p.subjectName(ctx, g.subject), Detail: detail})
	if s.p.o.TokenIssued != nil {
		s.p.o.TokenIssued(g.how)
	}
}

// CreateAccessAndRefreshTokens implements op.AuthStorage: a new refresh
// token in the same family on every use (rotation).
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, currentRefresh string) (string, string, time.Time, error) {
	g, err := s.resolve(ctx, req, currentRefresh)
	if err != nil {
		return "", "", time.Time{}, err
	}
	accessID, exp, err := s.newAccessToken(ctx, g)
	if err != nil {
		return "", "", time.Time{}, err
	}
	value := refreshTokenPrefix + randomString(32)
	now := s.now()
	rt := model.OIDCToken{
		ID: sha256Hex(value), Kind: model.TokenRefresh, FamilyID: g.family, ClientID: g.client.m.ClientID,
		Subject: g.subject, SessionID: g.sessionID, Scopes: g.scopes, Audience: g.audience, AMR: g.amr,
		AuthTime: g.authTime, CreatedAt: now, ExpiresAt: now.Add(g.client.refreshTokenLifetime()),
	}
	if err := s.st().CreateOIDCToken(ctx, rt); err != nil {
		return "", "", time.Time{}, err
	}
	s.issued(ctx, g, true)
	return accessID, value, exp, nil
}

// refreshTokenPrefix makes our refresh tokens recognisable to secret
// scanners.
const refreshTokenPrefix = "ghr_"

// TokenRequestByRefreshToken implements op.AuthStorage. A used token is a
// reuse: the whole family is revoked (Hydra and Kanidm do this, Keycloak
// only when configured, ZITADEL and Dex not at all). The user must still
// exist, be enabled and be allowed to use the client.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, value string) (op.RefreshTokenRequest, error) {
	t, err := s.st().GetOIDCToken(ctx, sha256Hex(value))
	if err != nil || t.Kind != model.TokenRefresh {
		return nil, op.ErrInvalidRefreshToken
	}
	now := s.now()
	switch {
	case !t.UsedAt.IsZero():
		s.revokeFamily(ctx, t, "refresh token reuse")
		return nil, errRefreshReused
	case !t.ActiveAt(now):
		return nil, errTokenInactive
	}
	if !isServiceAccount(t.Subject) {
		c, err := s.client(ctx, t.ClientID)
		if err != nil {
			return nil, err
		}
		if _, _, err := s.userAllowed(ctx, c, t.Subject); err != nil {
			if errors.Is(err, errNoAccess) || errors.Is(err, store.ErrNotFound) {
				s.revokeFamily(ctx, t, "user lost access")
			}
			return nil, err
		}
	}
	return &refreshRequest{t: t, scopes: t.Scopes}, nil
}

func (s *storage) revokeFamily(ctx context.Context, t model.OIDCToken, why string) {
	if t.FamilyID == "" {
		return
	}
	n, err := s.st().RevokeOIDCFamily(ctx, t.FamilyID, s.now())
	s.log.Warn("revoked token family", "reason", why, "client", t.ClientID, "subject", t.Subject, "revoked", n, "err", err)
	s.p.record(ctx, model.AuditEvent{Action: "token.revoked", Actor: "system", Subject: s.p.subjectName(ctx, t.Subject),
		Outcome: "success", Detail: map[string]string{"client": t.ClientID, "reason": why, "tokens": strconv.Itoa(n)}})
}

// userAllowed loads the user and their groups and checks the client's
// allow_groups.
func (s *storage) userAllowed(ctx context.Context, c *client, userID string) (model.User, []string, error) {
	u, err := s.st().GetUser(ctx, userID)
	if err != nil {
		return model.User{}, nil, err
	}
	if u.Disabled {
		return model.User{}, nil, errNoAccess
	}
	groups, err := s.groupNames(ctx, userID)
	if err != nil {
		return model.User{}, nil, err
	}
	if !c.allows(groups) {
		return model.User{}, nil, errNoAccess
	}
	return u, groups, nil
}

func (s *storage) groupNames(ctx context.Context, userID string) ([]string, error) {
	gs, err := s.st().GroupsOfUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	return names, nil
}

// activeToken returns the access token with the given id if it is usable:
// not expired or revoked, subject matching, and its user still allowed.
func (s *storage) activeToken(ctx context.Context, tokenID, subject string) (model.OIDCToken, error) {
	t, err := s.st().GetOIDCToken(ctx, tokenID)
	if err != nil {
		return model.OIDCToken{}, err
	}
	if t.Kind != model.TokenAccess || t.Subject != subject || !t.ActiveAt(s.now()) {
		return model.OIDCToken{}, errTokenInactive
	}
	return t, nil
}

// TerminateSession implements op.AuthStorage (unused: the library prefers
// TerminateSessionFromRequest).
func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	_, err := s.st().RevokeOIDCTokens(ctx, userID, clientID, "", s.now())
	return err
}

// TerminateSessionFromRequest implements op.CanTerminateSessionFromRequest:
// RP-initiated logout. With a valid id_token_hint it ends the browser's IdP
// session (which ends forward-auth access bound to it) and revokes the
// client's tokens from that session. Without one it only sends the browser
// to the sign-out page, where the user confirms: a bare link must not be
// able to sign anyone out.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	if req.IDTokenHintClaims == nil {
		if req.RedirectURI == "" || req.RedirectURI == s.p.paths.signedOut() {
			return "/logout", nil
		}
		// A post_logout_redirect_uri the library validated against the
		// client_id: offered as where to go once signed out.
		return "/logout?rd=" + url.QueryEscape(req.RedirectURI), nil
	}
	r, _ := ctx.Value(requestKey{}).(*http.Request)
	if r != nil {
		if sess, ok := s.p.o.CurrentSession(r); ok && sess.UserID == req.UserID {
			if err := s.p.o.RevokeSession(ctx, sess.ID); err != nil {
				return "", err
			}
			if _, err := s.st().RevokeOIDCTokens(ctx, req.UserID, req.ClientID, sess.ID, s.now()); err != nil {
				return "", err
			}
			s.p.record(ctx, model.AuditEvent{Action: "logout", Actor: s.p.subjectName(ctx, req.UserID), ActorID: req.UserID,
				Detail: map[string]string{"via": "end_session", "client": req.ClientID}})
		}
	}
	return req.RedirectURI, nil
}

// RevokeToken implements op.AuthStorage (RFC 7009). Revoking a refresh
// token revokes its whole family, access tokens included.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	// tokenOrID is a stored id (an access token's, or what
	// GetRefreshTokenInfo returned), or a raw token nothing recognised.
	t, err := s.st().GetOIDCToken(ctx, tokenOrID)
	if errors.Is(err, store.ErrNotFound) && userID == "" {
		t, err = s.st().GetOIDCToken(ctx, sha256Hex(tokenOrID))
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil // RFC 7009 §2.2: unknown tokens are not an error
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if t.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
	}
	if t.Kind == model.TokenRefresh {
		_, err = s.st().RevokeOIDCFamily(ctx, t.FamilyID, s.now())
	} else {
		err = s.st().RevokeOIDCToken(ctx, t.ID, s.now())
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	s.p.record(ctx, model.AuditEvent{Action: "token.revoked", Actor: "client:" + clientID, Subject: s.p.subjectName(ctx, t.Subject),
		Detail: map[string]string{"client": clientID, "kind": string(t.Kind), "reason": "revocation endpoint"}})
	return nil
}

// GetRefreshTokenInfo implements op.AuthStorage.
func (s *storage) GetRefreshTokenInfo(ctx context.Context, _, value string) (string, string, error) {
	t, err := s.st().GetOIDCToken(ctx, sha256Hex(value))
	if err != nil || t.Kind != model.TokenRefresh {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.Subject, t.ID, nil
}

// ---------------------------------------------------------------- keys

// SigningKey implements op.AuthStorage.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	k := s.p.keys.signingKey()
	if k == nil {
		return nil, errors.New("no signing key")
	}
	return k, nil
}

// SignatureAlgorithms implements op.AuthStorage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.p.keys.alg}, nil
}

// KeySet implements op.AuthStorage.
func (s *storage) KeySet(context.Context) ([]op.Key, error) { return s.p.keys.keySet(), nil }

// ---------------------------------------------------------------- claims

// SetUserinfoFromScopes implements op.OPStorage; deprecated upstream in
// favour of SetUserinfoFromRequest.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the
// claims of the ID token.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.fillUserinfo(ctx, info, req.GetSubject(), req.GetClientID(), scopes)
}

// SetUserinfoFromToken implements op.OPStorage: the userinfo endpoint.
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.activeToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	return s.fillUserinfo(ctx, info, t.Subject, t.ClientID, t.Scopes)
}

// fillUserinfo sets the claims the scopes allow. sub is the user's
// immutable id, never the username, so renaming a user does not make
// another account of them in every app.
func (s *storage) fillUserinfo(ctx context.Context, info *oidc.UserInfo, subject, clientID string, scopes []string) error {
	info.Subject = subject
	if isServiceAccount(subject) {
		c, err := s.client(ctx, clientID)
		if err != nil {
			return err
		}
		info.PreferredUsername = c.m.ClientID
		if slices.Contains(scopes, ScopeGroups) {
			info.AppendClaims(ScopeGroups, nonNil(c.m.Groups))
		}
		return nil
	}
	u, err := s.st().GetUser(ctx, subject)
	if err != nil {
		return err
	}
	if u.Disabled {
		return errNoAccess
	}
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
			info.Name = u.DisplayName
			if info.Name == "" {
				info.Name = u.Username
			}
		case oidc.ScopeEmail:
			info.Email = u.Email
			// Addresses are set by administrators (config, CLI), not
			// typed in by users, so they count as verified.
			info.EmailVerified = oidc.Bool(u.Email != "")
		case ScopeGroups:
			groups, err := s.groupNames(ctx, u.ID)
			if err != nil {
				return err
			}
			info.AppendClaims(ScopeGroups, nonNil(groups))
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SetIntrospectionFromToken implements op.OPStorage (RFC 7662).
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	t, err := s.activeToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	info := new(oidc.UserInfo)
	if err := s.fillUserinfo(ctx, info, t.Subject, t.ClientID, t.Scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Scope = t.Scopes
	resp.ClientID = t.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(t.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(t.CreatedAt)
	resp.AuthTime = oidc.FromTime(t.AuthTime)
	resp.Audience = t.Audience
	resp.Issuer = s.p.o.Issuer
	resp.JWTID = t.ID
	return nil
}

// GetPrivateClaimsFromScopes implements op.OPStorage.
func (s *storage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	return s.privateClaims(ctx, userID, clientID, scopes)
}

// GetPrivateClaimsFromRequest implements op.CanGetPrivateClaimsFromRequest:
// extra claims of JWT access tokens.
func (s *storage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, scopes []string) (map[string]any, error) {
	return s.privateClaims(ctx, req.GetSubject(), clientIDOf(req), scopes)
}

func (s *storage) privateClaims(ctx context.Context, subject, clientID string, scopes []string) (map[string]any, error) {
	if !slices.Contains(scopes, ScopeGroups) {
		return nil, nil
	}
	info := new(oidc.UserInfo)
	if err := s.fillUserinfo(ctx, info, subject, clientID, []string{ScopeGroups}); err != nil {
		return nil, err
	}
	return map[string]any{ScopeGroups: info.Claims[ScopeGroups]}, nil
}

// GetKeyByIDAndClientID implements op.OPStorage: private_key_jwt and the
// JWT bearer grant are not offered.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT client authentication is not supported")
}

// ValidateJWTProfileScopes implements op.OPStorage.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT bearer grant is not supported")
}

// Health implements op.Storage.
func (s *storage) Health(context.Context) error { return nil }

// ---------------------------------------------------------------- device flow

// StoreDeviceAuthorization implements op.DeviceAuthorizationStorage.
func (s *storage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	if err := checkScopes(scopes); err != nil {
		return err
	}
	now := s.now()
	err := s.st().CreateDeviceAuth(ctx, model.DeviceAuth{
		ID: sha256Hex(deviceCode), UserCode: userCode, ClientID: clientID, Scopes: scopes,
		CreatedAt: now, ExpiresAt: expires.UTC(),
	})
	if errors.Is(err, store.ErrConflict) {
		return op.ErrDuplicateUserCode
	}
	return err
}

// GetDeviceAuthorizatonState implements op.DeviceAuthorizationStorage. The
// approved state is handed out once: a second poll after tokens were
// issued is refused, so a leaked device code is worth nothing later.
func (s *storage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	id := sha256Hex(deviceCode)
	d, err := s.st().GetDeviceAuth(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.ClientID != clientID {
		return nil, errors.New("device code belongs to another client")
	}
	state := &op.DeviceAuthorizationState{ClientID: d.ClientID, Scopes: d.Scopes, Expires: d.ExpiresAt, Denied: d.Denied}
	if d.Done && !d.Denied {
		if _, err := s.st().UpdateDeviceAuth(ctx, id, func(x *model.DeviceAuth) error {
			if x.Redeemed {
				return errors.New("device code already used")
			}
			x.Redeemed = true
			return nil
		}); err != nil {
			return nil, err
		}
		state.Done, state.Subject, state.AuthTime, state.AMR = true, d.UserID, d.AuthTime, amr(d.UserID)
	}
	return state, nil
}
