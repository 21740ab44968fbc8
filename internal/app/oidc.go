package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/config"
	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/oidcop"
	"github.com/gatehouse-sso/gatehouse/internal/store"
	"github.com/gatehouse-sso/gatehouse/internal/web"
)

// OIDCSecretHasher hashes client secrets; the CLI uses it to rotate them.
func (a *App) OIDCSecretHasher() *oidcop.SecretHasher {
	return oidcop.NewSecretHasher(a.Key.Derive("oidc-client-secret"))
}

// RotateOIDCSecret gives the client a new random secret, stores its hash
// and returns the secret (to be shown once).
func (a *App) RotateOIDCSecret(ctx context.Context, clientID string) (string, error) {
	secret := oidcop.NewClientSecret()
	if err := a.Store.SetOIDCClientSecret(ctx, clientID, a.OIDCSecretHasher().Hash(secret), false); err != nil {
		return "", err
	}
	a.Audit.Record(ctx, model.AuditEvent{Action: "app.secret_rotated", Subject: clientID})
	return secret, nil
}

// OIDC returns the OpenID provider once Handler has built it (nil before).
// Forward auth uses its VerifyBearer to accept OAuth access tokens.
func (a *App) OIDC() *oidcop.Provider { return a.oidc }

// ReconcileOIDCClients makes the clients in the store match the apps'
// oidc sections: declared ones are created or updated, clients of apps no
// longer declared are removed with their tokens (by every role but
// server). A secret set with `gatehouse app rotate-secret` is kept unless
// the file sets one.
func (a *App) ReconcileOIDCClients(ctx context.Context) error {
	hasher := a.OIDCSecretHasher()
	declared := map[string]bool{}
	for _, app := range a.Config.Apps {
		o := app.OIDC
		if o == nil {
			continue
		}
		declared[o.ClientID] = true
		c := clientFromConfig(app, o)
		if o.ClientSecret != "" {
			c.SecretHash, c.SecretFromConfig = hasher.Hash(o.ClientSecret), true
		}
		if err := a.Store.PutOIDCClient(ctx, c); err != nil {
			return fmt.Errorf("app %s: %w", app.Slug, err)
		}
		if !o.Public && o.ClientSecret == "" {
			stored, err := a.Store.GetOIDCClient(ctx, o.ClientID)
			if err != nil {
				return err
			}
			if stored.SecretFromConfig {
				// The file used to set the secret and no longer does: the
				// old secret stops working until one is rotated in.
				if err := a.Store.SetOIDCClientSecret(ctx, o.ClientID, "", false); err != nil {
					return err
				}
				stored.SecretHash = ""
			}
			if stored.SecretHash == "" {
				a.Logger.Warn("OIDC client has no secret yet; set one with `gatehouse app rotate-secret`", "app", app.Slug, "client_id", o.ClientID)
			}
		}
	}
	if a.role == RoleServer {
		// Deleting is left to the worker: during a rolling deploy a server
		// replica that (re)starts with the old configuration must not
		// delete clients the new one added, with their users' tokens.
		return nil
	}
	existing, err := a.Store.ListOIDCClients(ctx)
	if err != nil {
		return err
	}
	for _, c := range existing {
		if !declared[c.ClientID] {
			if err := a.Store.DeleteOIDCClient(ctx, c.ClientID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			a.Logger.Info("removed OIDC client no longer in the configuration", "client_id", c.ClientID)
		}
	}
	return nil
}

func clientFromConfig(app config.App, o *config.AppOIDC) model.OIDCClient {
	consent := model.ConsentImplicit
	if o.Consent == model.ConsentExplicit {
		consent = model.ConsentExplicit
	}
	format := model.TokenOpaque
	if o.AccessTokenFormat == model.TokenJWT {
		format = model.TokenJWT
	}
	name := app.Name
	if name == "" {
		name = app.Slug
	}
	return model.OIDCClient{
		ClientID: o.ClientID, AppSlug: app.Slug, AppName: name, Public: o.Public,
		RedirectURIs: o.RedirectURIs, PostLogoutRedirectURIs: o.PostLogoutRedirectURIs,
		GrantTypes: o.GrantTypesOrDefault(), AllowGroups: app.AllowGroups, Groups: o.Groups,
		Consent: consent, TokenFormat: format,
		AccessTokenLifetime:  time.Duration(o.AccessTokenLifetime),
		IDTokenLifetime:      time.Duration(o.IDTokenLifetime),
		RefreshTokenLifetime: time.Duration(o.RefreshTokenLifetime),
	}
}

// registerOIDC builds the OpenID provider and mounts it: back-channel
// endpoints on root (any host, no CSRF), interactive pages on browser.
func (a *App) registerOIDC(root, browser *http.ServeMux, pages *web.Handler) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.ReconcileOIDCClients(ctx); err != nil {
		return fmt.Errorf("OIDC clients: %w", err)
	}
	cfg := a.Config
	var tokenKey [32]byte
	copy(tokenKey[:], a.Key.Derive("oidc-access-token"))
	maxLifetime := max(time.Duration(cfg.OIDC.AccessTokenLifetime), time.Duration(cfg.OIDC.IDTokenLifetime))
	for _, app := range cfg.Apps {
		if app.OIDC != nil {
			maxLifetime = slices.Max([]time.Duration{maxLifetime, time.Duration(app.OIDC.AccessTokenLifetime), time.Duration(app.OIDC.IDTokenLifetime)})
		}
	}
	p, err := oidcop.New(ctx, oidcop.Options{
		Issuer:               cfg.ExternalURL,
		Store:                a.Store,
		SecretHasher:         a.OIDCSecretHasher(),
		KeySealer:            a.Key.Sealer("oidc-signing-key"),
		TokenKey:             tokenKey,
		SigningAlgorithm:     cfg.OIDC.SigningAlgorithm,
		KeyRotation:          time.Duration(cfg.OIDC.KeyRotation),
		AccessTokenLifetime:  time.Duration(cfg.OIDC.AccessTokenLifetime),
		IDTokenLifetime:      time.Duration(cfg.OIDC.IDTokenLifetime),
		RefreshTokenLifetime: time.Duration(cfg.OIDC.RefreshTokenLifetime),
		AuthRequestLifetime:  time.Duration(cfg.OIDC.AuthRequestLifetime),
		DeviceCodeLifetime:   time.Duration(cfg.OIDC.DeviceCodeLifetime),
		MaxTokenLifetime:     maxLifetime,
		CurrentSession:       pages.CurrentSession,
		RevokeSession:        a.Sessions.RevokeID,
		Pages:                pages,
		Audit:                a.Audit,
		TokenIssued:          a.Metrics.TokenIssued,
		Logger:               a.Logger,
	})
	if err != nil {
		return err
	}
	a.oidc = p
	p.RegisterBackChannel(root)
	p.RegisterBrowser(browser)
	return nil
}
