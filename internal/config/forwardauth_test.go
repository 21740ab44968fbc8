package config

import (
	"strings"
	"testing"
)

func TestForwardAuthSection(t *testing.T) {
	good := `
external_url: https://auth.homelab.local
cookie_domain: homelab.local
forward_auth:
  default_policy: one_factor
apps:
  - slug: sonarr
    allow_groups: [media]
    forward_auth:
      hosts: [sonarr.homelab.local, "*.lab.homelab.local"]
      skip_paths: ["^/api/"]
      headers: [remote]
      allow_bearer: true
      rules:
        - paths: [/admin]
          groups: [admins]
          networks: [10.0.0.0/8, 192.168.1.1]
          methods: [GET]
          policy: two_factor
`
	c, err := Parse([]byte(good), "gatehouse.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	fa := c.Apps[0].ForwardAuth
	if fa == nil || len(fa.Hosts) != 2 || fa.Rules[0].Policy != "two_factor" || !fa.AllowBearer || c.ForwardAuth.DefaultPolicy != "one_factor" {
		t.Fatalf("decoded %+v / %+v", fa, c.ForwardAuth)
	}
	if h := c.ForwardAuthHosts(); len(h) != 1 || h[0] != "sonarr.homelab.local" {
		t.Fatalf("ForwardAuthHosts = %v", h)
	}

	bad := `
external_url: https://auth.homelab.local
cookie_domain: homelab.local
forward_auth:
  default_policy: allow
apps:
  - slug: a
    forward_auth:
      hosts: ["bad host", "*.example.org", x.homelab.local]
      skip_paths: ["("]
      headers: [traefik]
      rules:
        - paths: [admin]
          networks: [10.0.0.0/33]
          policy: maybe
  - slug: b
    forward_auth:
      hosts: [x.homelab.local]
  - slug: c
    forward_auth: {}
`
	_, err = Parse([]byte(bad), "gatehouse.yaml", nil)
	if err == nil {
		t.Fatal("accepted a broken forward_auth section")
	}
	for _, want := range []string{
		"forward_auth.default_policy", `"bad host"`, "must lie under cookie_domain", "already claimed by app a",
		"skip_paths[0]", "headers[0]", "paths[0]", "networks[0]", "rules[0].policy", "apps[2].forward_auth.hosts: needs at least one host",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
