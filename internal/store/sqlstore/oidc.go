package sqlstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// The OIDC tables keep lists and attributes nobody queries by in a JSON
// "data" column, so the schema does not grow a column (and a migration) for
// every protocol detail. The structs below are that JSON, versioned by
// field name: unknown fields are ignored, missing ones are zero.

type clientData struct {
	AppName                string   `json:"app_name"`
	Public                 bool     `json:"public,omitempty"`
	RedirectURIs           []string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             []string `json:"grant_types,omitempty"`
	AllowGroups            []string `json:"allow_groups,omitempty"`
	Groups                 []string `json:"groups,omitempty"`
	Consent                string   `json:"consent,omitempty"`
	TokenFormat            string   `json:"token_format,omitempty"`
	AccessTokenLifetime    int64    `json:"access_token_lifetime_us,omitempty"`
	IDTokenLifetime        int64    `json:"id_token_lifetime_us,omitempty"`
	RefreshTokenLifetime   int64    `json:"refresh_token_lifetime_us,omitempty"`
}

const clientColumns = "client_id, app_slug, data, secret_hash, secret_from_config, created_at, updated_at"

func scanClient(sc scanner) (model.OIDCClient, error) {
	var (
		c                model.OIDCClient
		data             string
		created, updated int64
	)
	if err := sc.Scan(&c.ClientID, &c.AppSlug, &data, &c.SecretHash, &c.SecretFromConfig, &created, &updated); err != nil {
		return model.OIDCClient{}, err
	}
	var d clientData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return model.OIDCClient{}, fmt.Errorf("decode client %q: %w", c.ClientID, err)
	}
	c.AppName, c.Public, c.RedirectURIs, c.PostLogoutRedirectURIs = d.AppName, d.Public, d.RedirectURIs, d.PostLogoutRedirectURIs
	c.GrantTypes, c.AllowGroups, c.Groups, c.Consent, c.TokenFormat = d.GrantTypes, d.AllowGroups, d.Groups, d.Consent, d.TokenFormat
	c.AccessTokenLifetime = time.Duration(d.AccessTokenLifetime) * time.Microsecond
	c.IDTokenLifetime = time.Duration(d.IDTokenLifetime) * time.Microsecond
	c.RefreshTokenLifetime = time.Duration(d.RefreshTokenLifetime) * time.Microsecond
	c.CreatedAt, c.UpdatedAt = fromMicro(created), fromMicro(updated)
	return c, nil
}

func encodeClient(c model.OIDCClient) string {
	b, _ := json.Marshal(clientData{
		AppName: c.AppName, Public: c.Public, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		GrantTypes: c.GrantTypes, AllowGroups: c.AllowGroups, Groups: c.Groups, Consent: c.Consent, TokenFormat: c.TokenFormat,
		AccessTokenLifetime:  c.AccessTokenLifetime.Microseconds(),
		IDTokenLifetime:      c.IDTokenLifetime.Microseconds(),
		RefreshTokenLifetime: c.RefreshTokenLifetime.Microseconds(),
	})
	return string(b)
}

// PutOIDCClient creates or replaces the client. A secret set with the CLI
// survives a replace that carries no secret of its own.
func (s *Store) PutOIDCClient(ctx context.Context, c model.OIDCClient) error {
	op := fmt.Sprintf("put OIDC client %q", c.ClientID)
	if c.ClientID == "" || c.AppSlug == "" {
		return fail(op, errors.New("client ID and app slug are required"))
	}
	now := s.nowMicro()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	// keepSecret: neither a hash nor "the config owns the secret" given.
	keepSecret := c.SecretHash == "" && !c.SecretFromConfig
	_, err := s.exec(ctx, s.writer(), "INSERT INTO oidc_clients ("+clientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (client_id) DO UPDATE SET app_slug = excluded.app_slug, data = excluded.data,
			secret_hash = CASE WHEN ? THEN oidc_clients.secret_hash ELSE excluded.secret_hash END,
			secret_from_config = CASE WHEN ? THEN oidc_clients.secret_from_config ELSE excluded.secret_from_config END,
			updated_at = excluded.updated_at`,
		c.ClientID, c.AppSlug, encodeClient(c), c.SecretHash, c.SecretFromConfig, toMicro(c.CreatedAt), toMicro(now),
		keepSecret, keepSecret)
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// GetOIDCClient returns one client.
func (s *Store) GetOIDCClient(ctx context.Context, clientID string) (model.OIDCClient, error) {
	c, err := scanClient(s.queryRow(ctx, s.reader(), "SELECT "+clientColumns+" FROM oidc_clients WHERE client_id = ?", clientID))
	if err != nil {
		return model.OIDCClient{}, fail(fmt.Sprintf("get OIDC client %q", clientID), err)
	}
	return c, nil
}

// ListOIDCClients returns every client ordered by client id.
func (s *Store) ListOIDCClients(ctx context.Context) (out []model.OIDCClient, err error) {
	const op = "list OIDC clients"
	rows, err := s.query(ctx, s.reader(), "SELECT "+clientColumns+" FROM oidc_clients ORDER BY client_id"+s.d.byteOrder)
	if err != nil {
		return nil, fail(op, err)
	}
	defer closeRows(rows, &err)
	out = []model.OIDCClient{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fail(op, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// DeleteOIDCClient removes the client; foreign keys cascade to its auth
// requests, tokens, consents and device authorizations.
func (s *Store) DeleteOIDCClient(ctx context.Context, clientID string) error {
	op := fmt.Sprintf("delete OIDC client %q", clientID)
	res, err := s.exec(ctx, s.writer(), "DELETE FROM oidc_clients WHERE client_id = ?", clientID)
	if err != nil {
		return fail(op, err)
	}
	return mustAffect(op, res)
}

// SetOIDCClientSecret replaces the secret hash.
func (s *Store) SetOIDCClientSecret(ctx context.Context, clientID, hash string, fromConfig bool) error {
	op := fmt.Sprintf("set secret of OIDC client %q", clientID)
	res, err := s.exec(ctx, s.writer(), "UPDATE oidc_clients SET secret_hash = ?, secret_from_config = ?, updated_at = ? WHERE client_id = ?",
		hash, fromConfig, toMicro(s.nowMicro()), clientID)
	if err != nil {
		return fail(op, err)
	}
	return mustAffect(op, res)
}

// ---------------------------------------------------------------- auth requests

type authRequestData struct {
	RedirectURI         string   `json:"redirect_uri"`
	Scopes              []string `json:"scopes,omitempty"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	ResponseType        string   `json:"response_type,omitempty"`
	ResponseMode        string   `json:"response_mode,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
	Prompt              []string `json:"prompt,omitempty"`
	MaxAge              int64    `json:"max_age"`
	ClaimsGroups        bool     `json:"claims_groups,omitempty"`
	UserID              string   `json:"user_id,omitempty"`
	SessionID           string   `json:"session_id,omitempty"`
	AuthTime            int64    `json:"auth_time,omitempty"`
	Done                bool     `json:"done,omitempty"`
	RedeemedAt          int64    `json:"redeemed_at,omitempty"`
	FamilyID            string   `json:"family_id,omitempty"`
}

const authRequestColumns = "id, client_id, code_hash, data, created_at, expires_at"

func scanAuthRequest(sc scanner) (model.AuthRequest, error) {
	var (
		ar               model.AuthRequest
		code             *string
		data             string
		created, expires int64
	)
	if err := sc.Scan(&ar.ID, &ar.ClientID, &code, &data, &created, &expires); err != nil {
		return model.AuthRequest{}, err
	}
	var d authRequestData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return model.AuthRequest{}, fmt.Errorf("decode auth request: %w", err)
	}
	if code != nil {
		ar.CodeHash = *code
	}
	ar.RedirectURI, ar.Scopes, ar.State, ar.Nonce = d.RedirectURI, d.Scopes, d.State, d.Nonce
	ar.ResponseType, ar.ResponseMode, ar.CodeChallenge, ar.CodeChallengeMethod = d.ResponseType, d.ResponseMode, d.CodeChallenge, d.CodeChallengeMethod
	ar.Prompt, ar.MaxAge, ar.ClaimsGroups = d.Prompt, d.MaxAge, d.ClaimsGroups
	ar.UserID, ar.SessionID, ar.AuthTime, ar.Done = d.UserID, d.SessionID, fromMicro(d.AuthTime), d.Done
	ar.RedeemedAt, ar.FamilyID = fromMicro(d.RedeemedAt), d.FamilyID
	ar.CreatedAt, ar.ExpiresAt = fromMicro(created), fromMicro(expires)
	return ar, nil
}

func encodeAuthRequest(ar model.AuthRequest) (data string, code any) {
	b, _ := json.Marshal(authRequestData{
		RedirectURI: ar.RedirectURI, Scopes: ar.Scopes, State: ar.State, Nonce: ar.Nonce,
		ResponseType: ar.ResponseType, ResponseMode: ar.ResponseMode, CodeChallenge: ar.CodeChallenge, CodeChallengeMethod: ar.CodeChallengeMethod,
		Prompt: ar.Prompt, MaxAge: ar.MaxAge, ClaimsGroups: ar.ClaimsGroups,
		UserID: ar.UserID, SessionID: ar.SessionID, AuthTime: toMicro(ar.AuthTime), Done: ar.Done,
		RedeemedAt: toMicro(ar.RedeemedAt), FamilyID: ar.FamilyID,
	})
	if ar.CodeHash != "" {
		code = ar.CodeHash
	}
	return string(b), code
}

// CreateAuthRequest inserts ar; an unknown client is ErrNotFound.
func (s *Store) CreateAuthRequest(ctx context.Context, ar model.AuthRequest) error {
	const op = "create auth request"
	if ar.ID == "" || ar.ClientID == "" {
		return fail(op, errors.New("ID and client ID are required"))
	}
	data, code := encodeAuthRequest(ar)
	_, err := s.exec(ctx, s.writer(), "INSERT INTO oidc_auth_requests ("+authRequestColumns+") VALUES (?, ?, ?, ?, ?, ?)",
		ar.ID, ar.ClientID, code, data, toMicro(ar.CreatedAt), toMicro(ar.ExpiresAt))
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// GetAuthRequest returns the request, expired or not.
func (s *Store) GetAuthRequest(ctx context.Context, id string) (model.AuthRequest, error) {
	ar, err := scanAuthRequest(s.queryRow(ctx, s.reader(), "SELECT "+authRequestColumns+" FROM oidc_auth_requests WHERE id = ?", id))
	if err != nil {
		return model.AuthRequest{}, fail("get auth request", err)
	}
	return ar, nil
}

// GetAuthRequestByCode finds the request by its code hash.
func (s *Store) GetAuthRequestByCode(ctx context.Context, codeHash string) (model.AuthRequest, error) {
	if codeHash == "" {
		return model.AuthRequest{}, fail("get auth request by code", store.ErrNotFound)
	}
	ar, err := scanAuthRequest(s.queryRow(ctx, s.reader(), "SELECT "+authRequestColumns+" FROM oidc_auth_requests WHERE code_hash = ?", codeHash))
	if err != nil {
		return model.AuthRequest{}, fail("get auth request by code", err)
	}
	return ar, nil
}

// UpdateAuthRequest applies fn to the request in one transaction. A code
// hash already used by another request is ErrConflict.
func (s *Store) UpdateAuthRequest(ctx context.Context, id string, fn func(ar *model.AuthRequest) error) (model.AuthRequest, error) {
	const op = "update auth request"
	var out model.AuthRequest
	err := s.inTx(ctx, func(tx *Store) error {
		old, err := scanAuthRequest(tx.queryRow(ctx, tx.tx, "SELECT "+authRequestColumns+" FROM oidc_auth_requests WHERE id = ?"+tx.d.forUpdate, id))
		if err != nil {
			return fail(op, err)
		}
		ar := old
		if err := fn(&ar); err != nil {
			return err
		}
		if ar.ID != old.ID || ar.ClientID != old.ClientID {
			return fail(op, errors.New("the update function changed ID or client ID"))
		}
		data, code := encodeAuthRequest(ar)
		if _, err := tx.exec(ctx, tx.tx, "UPDATE oidc_auth_requests SET code_hash = ?, data = ?, expires_at = ? WHERE id = ?",
			code, data, toMicro(ar.ExpiresAt), id); err != nil {
			return fail(op, err)
		}
		out = ar
		return nil
	})
	return out, err
}

// DeleteAuthRequest removes the request; ErrNotFound when there is none.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	const op = "delete auth request"
	res, err := s.exec(ctx, s.writer(), "DELETE FROM oidc_auth_requests WHERE id = ?", id)
	if err != nil {
		return fail(op, err)
	}
	return mustAffect(op, res)
}

// ---------------------------------------------------------------- tokens

type tokenData struct {
	Scopes   []string `json:"scopes,omitempty"`
	Audience []string `json:"aud,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
}

const tokenColumns = "id, kind, family_id, client_id, subject, session_id, data, created_at, expires_at, used_at, revoked_at"

func scanToken(sc scanner) (model.OIDCToken, error) {
	var (
		t                                 model.OIDCToken
		data                              string
		created, expires, used, revokedAt int64
	)
	if err := sc.Scan(&t.ID, &t.Kind, &t.FamilyID, &t.ClientID, &t.Subject, &t.SessionID, &data, &created, &expires, &used, &revokedAt); err != nil {
		return model.OIDCToken{}, err
	}
	var d tokenData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return model.OIDCToken{}, fmt.Errorf("decode token: %w", err)
	}
	t.Scopes, t.Audience, t.AMR, t.AuthTime = d.Scopes, d.Audience, d.AMR, fromMicro(d.AuthTime)
	t.CreatedAt, t.ExpiresAt, t.UsedAt, t.RevokedAt = fromMicro(created), fromMicro(expires), fromMicro(used), fromMicro(revokedAt)
	return t, nil
}

// CreateOIDCToken inserts t; a taken ID is ErrConflict, an unknown client
// ErrNotFound.
func (s *Store) CreateOIDCToken(ctx context.Context, t model.OIDCToken) error {
	const op = "create OIDC token"
	if t.ID == "" || t.ClientID == "" || t.FamilyID == "" || (t.Kind != model.TokenAccess && t.Kind != model.TokenRefresh) {
		return fail(op, errors.New("ID, kind, family and client are required"))
	}
	b, _ := json.Marshal(tokenData{Scopes: t.Scopes, Audience: t.Audience, AMR: t.AMR, AuthTime: toMicro(t.AuthTime)})
	_, err := s.exec(ctx, s.writer(), "INSERT INTO oidc_tokens ("+tokenColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		t.ID, t.Kind, t.FamilyID, t.ClientID, t.Subject, t.SessionID, string(b),
		toMicro(t.CreatedAt), toMicro(t.ExpiresAt), toMicro(t.UsedAt), toMicro(t.RevokedAt))
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// GetOIDCToken returns one token, whatever its state.
func (s *Store) GetOIDCToken(ctx context.Context, id string) (model.OIDCToken, error) {
	t, err := scanToken(s.queryRow(ctx, s.reader(), "SELECT "+tokenColumns+" FROM oidc_tokens WHERE id = ?", id))
	if err != nil {
		return model.OIDCToken{}, fail("get OIDC token", err)
	}
	return t, nil
}

// UseRefreshToken marks a refresh token used with one conditional UPDATE,
// so two concurrent exchanges of the same token cannot both succeed.
func (s *Store) UseRefreshToken(ctx context.Context, id string, now time.Time) (model.OIDCToken, error) {
	const op = "use refresh token"
	var out model.OIDCToken
	err := s.inTx(ctx, func(tx *Store) error {
		res, err := tx.exec(ctx, tx.tx, "UPDATE oidc_tokens SET used_at = ? WHERE id = ? AND kind = 'refresh' AND used_at = 0 AND revoked_at = 0",
			toMicro(now), id)
		if err != nil {
			return fail(op, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fail(op, err)
		}
		t, err := scanToken(tx.queryRow(ctx, tx.tx, "SELECT "+tokenColumns+" FROM oidc_tokens WHERE id = ?", id))
		if err != nil {
			return fail(op, err)
		}
		out = t
		if n == 0 {
			return fmt.Errorf("sqlstore: %s: %w", op, store.ErrConflict)
		}
		return nil
	})
	// The token is returned with ErrConflict too: the caller needs its
	// family to revoke it.
	return out, err
}

// RevokeOIDCToken revokes one token.
func (s *Store) RevokeOIDCToken(ctx context.Context, id string, now time.Time) error {
	const op = "revoke OIDC token"
	res, err := s.exec(ctx, s.writer(), "UPDATE oidc_tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ?", toMicro(now), id)
	if err != nil {
		return fail(op, err)
	}
	return mustAffect(op, res)
}

// RevokeOIDCFamily revokes every token of the family.
func (s *Store) RevokeOIDCFamily(ctx context.Context, familyID string, now time.Time) (int, error) {
	res, err := s.exec(ctx, s.writer(), "UPDATE oidc_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at = 0", toMicro(now), familyID)
	if err != nil {
		return 0, fail("revoke OIDC token family", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// RevokeOIDCTokens revokes a subject's tokens, narrowed by client and IdP
// session when given.
func (s *Store) RevokeOIDCTokens(ctx context.Context, subject, clientID, sessionID string, now time.Time) (int, error) {
	q := "UPDATE oidc_tokens SET revoked_at = ? WHERE subject = ? AND revoked_at = 0"
	args := []any{toMicro(now), subject}
	if clientID != "" {
		q += " AND client_id = ?"
		args = append(args, clientID)
	}
	if sessionID != "" {
		q += " AND session_id = ?"
		args = append(args, sessionID)
	}
	res, err := s.exec(ctx, s.writer(), q, args...)
	if err != nil {
		return 0, fail("revoke OIDC tokens", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ---------------------------------------------------------------- keys

// CreateSigningKey inserts k.
func (s *Store) CreateSigningKey(ctx context.Context, k model.SigningKey) error {
	_, err := s.exec(ctx, s.writer(), "INSERT INTO oidc_signing_keys (id, algorithm, private, created_at, active_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
		k.ID, k.Algorithm, encodeBytes(k.Private), toMicro(k.CreatedAt), toMicro(k.ActiveAt), toMicro(k.ExpiresAt))
	if err != nil {
		return fail("create signing key", err)
	}
	return nil
}

// ListSigningKeys returns every key, newest ActiveAt first.
func (s *Store) ListSigningKeys(ctx context.Context) (out []model.SigningKey, err error) {
	const op = "list signing keys"
	rows, err := s.query(ctx, s.reader(), "SELECT id, algorithm, private, created_at, active_at, expires_at FROM oidc_signing_keys ORDER BY active_at DESC, id")
	if err != nil {
		return nil, fail(op, err)
	}
	defer closeRows(rows, &err)
	out = []model.SigningKey{}
	for rows.Next() {
		var (
			k                        model.SigningKey
			priv                     string
			created, active, expires int64
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &priv, &created, &active, &expires); err != nil {
			return nil, fail(op, err)
		}
		if k.Private, err = decodeBytes(priv); err != nil {
			return nil, fail(op, err)
		}
		k.CreatedAt, k.ActiveAt, k.ExpiresAt = fromMicro(created), fromMicro(active), fromMicro(expires)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// UpdateSigningKeyExpiry sets when the key leaves the key set.
func (s *Store) UpdateSigningKeyExpiry(ctx context.Context, id string, expires time.Time) error {
	const op = "update signing key"
	res, err := s.exec(ctx, s.writer(), "UPDATE oidc_signing_keys SET expires_at = ? WHERE id = ?", toMicro(expires), id)
	if err != nil {
		return fail(op, err)
	}
	return mustAffect(op, res)
}

// ---------------------------------------------------------------- consents

// GetConsent returns the remembered consent of the user for the client.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (model.Consent, error) {
	var (
		c       = model.Consent{UserID: userID, ClientID: clientID}
		scopes  string
		granted int64
	)
	err := s.queryRow(ctx, s.reader(), "SELECT scopes, granted_at FROM oidc_consents WHERE user_id = ? AND client_id = ?", userID, clientID).Scan(&scopes, &granted)
	if err != nil {
		return model.Consent{}, fail("get consent", err)
	}
	if err := json.Unmarshal([]byte(scopes), &c.Scopes); err != nil {
		return model.Consent{}, fail("get consent", err)
	}
	c.GrantedAt = fromMicro(granted)
	return c, nil
}

// PutConsent creates or replaces a consent.
func (s *Store) PutConsent(ctx context.Context, c model.Consent) error {
	b, _ := json.Marshal(c.Scopes)
	_, err := s.exec(ctx, s.writer(), `INSERT INTO oidc_consents (user_id, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
		c.UserID, c.ClientID, string(b), toMicro(c.GrantedAt))
	if err != nil {
		return fail("put consent", err)
	}
	return nil
}

// DeleteConsent forgets a consent; ErrNotFound when there is none.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	const op = "delete consent"
	res, err := s.exec(ctx, s.writer(), "DELETE FROM oidc_consents WHERE user_id = ? AND client_id = ?", userID, clientID)
	if err != nil {
		return fail(op, err)
	}
	return mustAffect(op, res)
}

// ---------------------------------------------------------------- devices

type deviceData struct {
	Scopes   []string `json:"scopes,omitempty"`
	UserID   string   `json:"user_id,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	Done     bool     `json:"done,omitempty"`
	Denied   bool     `json:"denied,omitempty"`
	Redeemed bool     `json:"redeemed,omitempty"`
}

const deviceColumns = "id, user_code, client_id, data, created_at, expires_at"

func scanDevice(sc scanner) (model.DeviceAuth, error) {
	var (
		d                model.DeviceAuth
		data             string
		created, expires int64
	)
	if err := sc.Scan(&d.ID, &d.UserCode, &d.ClientID, &data, &created, &expires); err != nil {
		return model.DeviceAuth{}, err
	}
	var dd deviceData
	if err := json.Unmarshal([]byte(data), &dd); err != nil {
		return model.DeviceAuth{}, fmt.Errorf("decode device authorization: %w", err)
	}
	d.Scopes, d.UserID, d.AuthTime, d.Done, d.Denied, d.Redeemed = dd.Scopes, dd.UserID, fromMicro(dd.AuthTime), dd.Done, dd.Denied, dd.Redeemed
	d.CreatedAt, d.ExpiresAt = fromMicro(created), fromMicro(expires)
	return d, nil
}

func encodeDevice(d model.DeviceAuth) string {
	b, _ := json.Marshal(deviceData{Scopes: d.Scopes, UserID: d.UserID, AuthTime: toMicro(d.AuthTime), Done: d.Done, Denied: d.Denied, Redeemed: d.Redeemed})
	return string(b)
}

// CreateDeviceAuth inserts d; a taken user code is ErrConflict.
func (s *Store) CreateDeviceAuth(ctx context.Context, d model.DeviceAuth) error {
	_, err := s.exec(ctx, s.writer(), "INSERT INTO oidc_device_auths ("+deviceColumns+") VALUES (?, ?, ?, ?, ?, ?)",
		d.ID, d.UserCode, d.ClientID, encodeDevice(d), toMicro(d.CreatedAt), toMicro(d.ExpiresAt))
	if err != nil {
		return fail("create device authorization", err)
	}
	return nil
}

// GetDeviceAuth returns a device authorization by the hash of its device
// code.
func (s *Store) GetDeviceAuth(ctx context.Context, id string) (model.DeviceAuth, error) {
	d, err := scanDevice(s.queryRow(ctx, s.reader(), "SELECT "+deviceColumns+" FROM oidc_device_auths WHERE id = ?", id))
	if err != nil {
		return model.DeviceAuth{}, fail("get device authorization", err)
	}
	return d, nil
}

// GetDeviceAuthByUserCode returns a device authorization by user code.
func (s *Store) GetDeviceAuthByUserCode(ctx context.Context, userCode string) (model.DeviceAuth, error) {
	d, err := scanDevice(s.queryRow(ctx, s.reader(), "SELECT "+deviceColumns+" FROM oidc_device_auths WHERE user_code = ?", userCode))
	if err != nil {
		return model.DeviceAuth{}, fail("get device authorization", err)
	}
	return d, nil
}

// UpdateDeviceAuth applies fn in one transaction.
func (s *Store) UpdateDeviceAuth(ctx context.Context, id string, fn func(d *model.DeviceAuth) error) (model.DeviceAuth, error) {
	const op = "update device authorization"
	var out model.DeviceAuth
	err := s.inTx(ctx, func(tx *Store) error {
		old, err := scanDevice(tx.queryRow(ctx, tx.tx, "SELECT "+deviceColumns+" FROM oidc_device_auths WHERE id = ?"+tx.d.forUpdate, id))
		if err != nil {
			return fail(op, err)
		}
		d := old
		if err := fn(&d); err != nil {
			return err
		}
		if d.ID != old.ID || d.UserCode != old.UserCode || d.ClientID != old.ClientID {
			return fail(op, errors.New("the update function changed ID, user code or client"))
		}
		if _, err := tx.exec(ctx, tx.tx, "UPDATE oidc_device_auths SET data = ?, expires_at = ? WHERE id = ?", encodeDevice(d), toMicro(d.ExpiresAt), id); err != nil {
			return fail(op, err)
		}
		out = d
		return nil
	})
	return out, err
}

// DeleteExpiredOIDC removes what has expired at now. Signing keys with no
// expiry set (0) are the ones still in use and stay.
func (s *Store) DeleteExpiredOIDC(ctx context.Context, now time.Time) (int, error) {
	n := toMicro(now)
	total := 0
	for _, q := range []string{
		"DELETE FROM oidc_auth_requests WHERE expires_at <= ?",
		"DELETE FROM oidc_tokens WHERE expires_at <= ?",
		"DELETE FROM oidc_device_auths WHERE expires_at <= ?",
		"DELETE FROM oidc_signing_keys WHERE expires_at > 0 AND expires_at <= ?",
	} {
		res, err := s.exec(ctx, s.writer(), q, n)
		if err != nil {
			return total, fail("delete expired OIDC records", err)
		}
		c, err := res.RowsAffected()
		if err != nil {
			return total, fail("delete expired OIDC records", err)
		}
		total += int(c)
	}
	return total, nil
}

func encodeBytes(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func decodeBytes(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
