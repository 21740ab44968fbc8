package oidcop

import (
	"context"
	"encoding/json"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// buildDiscovery renders the discovery document once. The library's
// document is the starting point; what it advertises but we refuse
// (implicit and hybrid flows, the JWT bearer grant, private_key_jwt, plain
// PKCE) is taken out so clients do not try it. Every URL is built from the
// configured issuer, never from the request's Host.
func (p *Provider) buildDiscovery() ([]byte, error) {
	ctx := p.issuerContext(context.Background())
	d := op.CreateDiscoveryConfig(ctx, p.op, p.st)
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFormPost)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials, oidc.GrantTypeDeviceCode}
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	basicPostNone := []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.TokenEndpointAuthMethodsSupported = basicPostNone
	d.RevocationEndpointAuthMethodsSupported = basicPostNone
	// The library authenticates introspection with Basic only.
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic}
	d.TokenEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.RequestObjectSigningAlgValuesSupported = nil
	d.RequestParameterSupported = false
	d.CheckSessionIframe = ""
	return json.Marshal(d)
}
