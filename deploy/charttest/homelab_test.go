package charttest

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// deploy/examples/homelab is the seed cluster (Authentik in front of the *arr apps, Grafana
// and Argo CD) expressed with Gatehouse. These tests keep its files honest: every manifest
// decodes strictly, the chart renders with its values, its Gatehouse configuration passes
// `gatehouse config validate` in the pod's environment, servers and workers started from it
// behave as the README says, and the files agree with each other (Service URLs, client ids,
// redirect URIs, Secret names and keys).

const homelabDir = "../examples/homelab"

// homelabNonManifests are the example files that are not Kubernetes objects.
var homelabNonManifests = map[string]string{
	"gatehouse.yaml":        "Gatehouse configuration",
	"gatehouse-values.yaml": "values for deploy/helm/gatehouse",
	"grafana-values.yaml":   "values for the grafana/grafana chart",
}

// homelabSeedApps are the seed's forward-auth apps: one Ingress each.
var homelabSeedApps = []string{"bazarr", "homepage", "prowlarr", "qbittorrent", "radarr", "sonarr", "tdarr"}

// homelabSecrets stands in for the Secrets the README has the operator create; the keys
// are the ones it names.
var homelabSecrets = map[string]map[string]string{
	"gatehouse-keys":              {"secret-key": strings.Repeat("5e", 32)},
	"gatehouse-db":                {"database-url": "postgres://gatehouse:pw@127.0.0.1:5432/gatehouse?sslmode=disable"},
	"gatehouse-redis":             {"redis-url": "redis://:pw@127.0.0.1:6379/0"},
	"gatehouse-oidc-clients":      {"grafana": strings.Repeat("a1", 32), "argocd": strings.Repeat("b2", 32)},
	"gatehouse-backup-passphrase": {"passphrase": "a long passphrase from the password manager"},
}

// ghConfig is the part of the Gatehouse configuration schema (internal/config) the tests
// cross-check. It decodes leniently: `gatehouse config validate` is the strict check.
type ghConfig struct {
	ExternalURL    string   `json:"external_url"`
	CookieDomain   string   `json:"cookie_domain"`
	TrustedProxies []string `json:"trusted_proxies"`
	ForwardAuth    struct {
		DefaultPolicy string `json:"default_policy"`
	} `json:"forward_auth"`
	Groups []struct {
		Name string `json:"name"`
	} `json:"groups"`
	Users []struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"users"`
	Apps []ghApp `json:"apps"`
}

type ghApp struct {
	Slug        string   `json:"slug"`
	AllowGroups []string `json:"allow_groups"`
	ForwardAuth *struct {
		Hosts       []string `json:"hosts"`
		AllowBearer bool     `json:"allow_bearer"`
	} `json:"forward_auth"`
	OIDC *struct {
		ClientID               string   `json:"client_id"`
		ClientSecretFile       string   `json:"client_secret_file"`
		Public                 bool     `json:"public"`
		RedirectURIs           []string `json:"redirect_uris"`
		PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	} `json:"oidc"`
}

func readHomelab(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(homelabDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func homelabConfig(t *testing.T) *ghConfig {
	t.Helper()
	var c ghConfig
	if err := yaml.Unmarshal(readHomelab(t, "gatehouse.yaml"), &c); err != nil {
		t.Fatalf("gatehouse.yaml: %v", err)
	}
	return &c
}

// oidcClient returns the app whose OIDC client_id is id.
func (c *ghConfig) oidcClient(t *testing.T, id string) *ghApp {
	t.Helper()
	for i := range c.Apps {
		if a := &c.Apps[i]; a.OIDC != nil && a.OIDC.ClientID == id {
			return a
		}
	}
	t.Fatalf("gatehouse.yaml declares no OIDC client %q", id)
	return nil
}

// forwardAuthApp picks the app for host the way Gatehouse does: an exact host first, then
// the longest wildcard that covers it.
func (c *ghConfig) forwardAuthApp(host string) (*ghApp, string) {
	var best *ghApp
	bestPattern := ""
	for i := range c.Apps {
		a := &c.Apps[i]
		if a.ForwardAuth == nil {
			continue
		}
		for _, h := range a.ForwardAuth.Hosts {
			h = strings.ToLower(h)
			if h == host {
				return a, h
			}
			if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasSuffix(host, suffix) && len(h) > len(bestPattern) {
				best, bestPattern = a, h
			}
		}
	}
	return best, bestPattern
}

// renderHomelab renders the chart with gatehouse-values.yaml as release "gatehouse" in
// namespace "auth", the names every other example file uses.
func renderHomelab(t *testing.T) *rendered {
	t.Helper()
	return mustRender(t, string(readHomelab(t, "gatehouse-values.yaml")), renderOptions{release: "gatehouse"})
}

// serviceURL is the in-cluster URL of the rendered Service that receives forward-auth
// checks and back-channel OIDC calls.
func serviceURL(t *testing.T, r *rendered) string {
	t.Helper()
	server := r.deployment(t, "gatehouse")
	for _, o := range r.all("Service") {
		s := o.Typed.(*corev1.Service)
		if !selects(s.Spec.Selector, server) {
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.Name == "http" {
				return "http://" + s.Name + "." + s.Namespace + ".svc.cluster.local:" + strconv.Itoa(int(p.Port))
			}
		}
	}
	t.Fatalf("no rendered Service with an http port selects the server pods: %s", r.summary())
	return ""
}

// homelabTyped knows the kinds the example's manifests may hold: those the chart renders,
// plus batch/v1 CronJob and Job.
func homelabTyped(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "batch/v1 CronJob":
		return &batchv1.CronJob{}, true
	case "batch/v1 Job":
		return &batchv1.Job{}, true
	}
	return newTyped(apiVersion, kind)
}

// homelabManifests decodes every manifest file of the example, strictly.
func homelabManifests(t *testing.T) map[string][]*object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(homelabDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files in %s: %v", homelabDir, err)
	}
	out := map[string][]*object{}
	for _, f := range files {
		base := filepath.Base(f)
		if _, ok := homelabNonManifests[base]; ok {
			continue
		}
		content := readHomelab(t, base)
		for i, doc := range docSeparator.Split(string(content), -1) {
			if blankYAML(doc) {
				continue
			}
			o, err := decodeWith([]byte(doc), homelabTyped)
			if err != nil {
				t.Fatalf("%s document %d: %v\n----\n%s", base, i, err, numbered(doc))
			}
			o.Source = base
			out[base] = append(out[base], o)
		}
		if len(out[base]) == 0 {
			t.Errorf("%s holds no object", base)
		}
	}
	return out
}

func TestHomelabManifestsDecodeStrictly(t *testing.T) {
	manifests := homelabManifests(t)
	seen := map[string]string{}
	for file, objs := range manifests {
		for _, o := range objs {
			id := o.Kind + "/" + o.Namespace + "/" + o.Name
			if prev, dup := seen[id]; dup {
				t.Errorf("%s: %s is also in %s", file, id, prev)
			}
			seen[id] = file
			// kubectl apply -f must not depend on the current namespace.
			if o.Namespace == "" {
				t.Errorf("%s: %s has no namespace", file, id)
			}
			for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
				t.Errorf("%s: %s: name: %s", file, id, msg)
			}
			for k, v := range o.Labels {
				for _, msg := range validation.IsQualifiedName(k) {
					t.Errorf("%s: %s: label key %q: %s", file, id, k, msg)
				}
				for _, msg := range validation.IsValidLabelValue(v) {
					t.Errorf("%s: %s: label %s=%q: %s", file, id, k, v, msg)
				}
			}
		}
	}

	// The files that are not manifests must not look like one (a misfiled object would
	// escape the strict decoding), and must hold YAML without duplicate keys.
	for name := range homelabNonManifests {
		js, err := yaml.YAMLToJSONStrict(readHomelab(t, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(js, &head); err == nil && (head.Kind != "" || head.APIVersion != "") {
			t.Errorf("%s has apiVersion/kind %q/%q: it is a manifest, not %s", name, head.APIVersion, head.Kind, homelabNonManifests[name])
		}
	}

	// README.md explains every file.
	readme := string(readHomelab(t, "README.md"))
	files, _ := filepath.Glob(filepath.Join(homelabDir, "*.yaml"))
	for _, f := range files {
		if !strings.Contains(readme, filepath.Base(f)) {
			t.Errorf("README.md does not mention %s", filepath.Base(f))
		}
	}
}

func TestHomelabIngresses(t *testing.T) {
	cfg := homelabConfig(t)
	r := renderHomelab(t)
	authURL := serviceURL(t, r) + "/api/authz/nginx"
	signin := cfg.ExternalURL + "/gate/start"
	if authURL != "http://gatehouse.auth.svc.cluster.local:9000/api/authz/nginx" {
		t.Errorf("the chart's Service URL is %s; the README and the examples say gatehouse.auth.svc.cluster.local:9000", authURL)
	}

	var apps []string
	hosts := map[string]bool{}
	for file, objs := range homelabManifests(t) {
		for _, o := range objs {
			if o.Kind != "Ingress" {
				continue
			}
			in := o.Typed.(*networkingv1.Ingress)
			if file != "ingress-"+in.Name+".yaml" {
				t.Errorf("Ingress %s is in %s, want ingress-%s.yaml", in.Name, file, in.Name)
			}
			apps = append(apps, in.Name)
			want := map[string]string{
				"nginx.ingress.kubernetes.io/auth-url":              authURL,
				"nginx.ingress.kubernetes.io/auth-signin":           signin,
				"nginx.ingress.kubernetes.io/auth-response-headers": "Remote-User,Remote-Groups,Remote-Email,Remote-Name",
			}
			for k, v := range want {
				if in.Annotations[k] != v {
					t.Errorf("%s: %s = %q, want %q", file, k, in.Annotations[k], v)
				}
			}
			for k := range in.Annotations {
				// ingress-nginx refuses snippet annotations by default (allow-snippet-annotations).
				if strings.Contains(k, "snippet") {
					t.Errorf("%s: %s: snippets are refused by ingress-nginx by default and not needed", file, k)
				}
			}
			if in.Spec.IngressClassName == nil || *in.Spec.IngressClassName != "nginx" {
				t.Errorf("%s: ingressClassName %v, want nginx", file, in.Spec.IngressClassName)
			}
			tlsHosts := map[string]bool{}
			for _, tls := range in.Spec.TLS {
				if tls.SecretName == "" {
					t.Errorf("%s: TLS entry without secretName", file)
				}
				for _, h := range tls.Hosts {
					tlsHosts[h] = true
				}
			}
			for _, rule := range in.Spec.Rules {
				host := rule.Host
				hosts[host] = true
				for _, msg := range validation.IsDNS1123Subdomain(host) {
					t.Errorf("%s: host %q: %s", file, host, msg)
				}
				// The gate cookie is Secure under an https external_url, and rd may not
				// downgrade: the app must be served over https.
				if strings.HasPrefix(cfg.ExternalURL, "https://") && !tlsHosts[host] {
					t.Errorf("%s: %s has no TLS; the Secure gate cookie would never reach it", file, host)
				}
				if host == hostOf(t, cfg.ExternalURL) {
					t.Errorf("%s: forward auth on the auth host itself", file)
				}
				app, pattern := cfg.forwardAuthApp(host)
				if app == nil {
					t.Errorf("%s: %s is claimed by no forward-auth app: forward_auth.default_policy (%s) applies", file, host, cfg.ForwardAuth.DefaultPolicy)
					continue
				}
				t.Logf("%s → app %s (%s), allow_groups %v", host, app.Slug, pattern, app.AllowGroups)
				// The seed gives "authentik Admins" full access to every forward-auth app.
				if len(app.AllowGroups) > 0 && !slices.Contains(app.AllowGroups, "admins") {
					t.Errorf("%s: app %s does not admit admins (allow_groups %v)", host, app.Slug, app.AllowGroups)
				}
				if rule.HTTP == nil || len(rule.HTTP.Paths) == 0 {
					t.Errorf("%s: rule for %s has no paths", file, host)
					continue
				}
				for _, p := range rule.HTTP.Paths {
					if p.Backend.Service == nil || p.Backend.Service.Name == "" || (p.Backend.Service.Port.Number == 0 && p.Backend.Service.Port.Name == "") {
						t.Errorf("%s: path %s has no service backend", file, p.Path)
					}
				}
			}
		}
	}
	sort.Strings(apps)
	if !slices.Equal(apps, homelabSeedApps) {
		t.Errorf("forward-auth Ingresses %v, want the seed's %v", apps, homelabSeedApps)
	}

	// Every exact host declared for forward auth has its Ingress, except the optional
	// Prometheus one (the seed leaves Prometheus unprotected; README.md shows how).
	for _, a := range cfg.Apps {
		if a.ForwardAuth == nil {
			continue
		}
		for _, h := range a.ForwardAuth.Hosts {
			if strings.HasPrefix(h, "*.") || a.Slug == "prometheus" {
				continue
			}
			if !hosts[h] {
				t.Errorf("app %s claims %s, but no example Ingress serves it", a.Slug, h)
			}
		}
	}
	for _, unprotected := range []string{"prometheus", "alertmanager", "jellyfin"} {
		if slices.Contains(apps, unprotected) {
			t.Errorf("%s has forward-auth annotations; the seed leaves it unprotected", unprotected)
		}
	}

	// The domain-level catch-all and a default deny for everything else.
	if app, pattern := cfg.forwardAuthApp("newapp." + cfg.CookieDomain); app == nil || pattern != "*."+cfg.CookieDomain {
		t.Errorf("no *.%s catch-all app", cfg.CookieDomain)
	}
	if cfg.ForwardAuth.DefaultPolicy != "deny" {
		t.Errorf("forward_auth.default_policy = %q, want deny", cfg.ForwardAuth.DefaultPolicy)
	}
	prom, _ := cfg.forwardAuthApp("prometheus." + cfg.CookieDomain)
	if prom == nil || prom.Slug != "prometheus" || !prom.ForwardAuth.AllowBearer {
		t.Errorf("no prometheus app that accepts a Bearer machine token")
	}
}

func TestHomelabChart(t *testing.T) {
	cfg := homelabConfig(t)
	r := renderHomelab(t)
	ext := external{secrets: map[string]bool{}}
	for name := range homelabSecrets {
		ext.secrets[name] = true
	}
	checkInvariants(t, r, ext)

	// The README's install steps create every Secret the pods read, with the keys they read.
	readme := string(readHomelab(t, "README.md"))
	for name, keys := range homelabSecrets {
		if !strings.Contains(readme, "create secret generic "+name) {
			t.Errorf("README.md does not create the Secret %s", name)
		}
		for key := range keys {
			if !strings.Contains(readme, "--from-literal="+key+"=") {
				t.Errorf("README.md does not create the key %s of Secret %s", key, name)
			}
		}
	}

	want := []string{
		"ConfigMap/gatehouse", "Deployment/gatehouse", "Deployment/gatehouse-worker", "Ingress/gatehouse",
		"PersistentVolumeClaim/gatehouse-backups", "PodDisruptionBudget/gatehouse", "Service/gatehouse", "Service/gatehouse-metrics",
		"ServiceAccount/gatehouse", "ServiceMonitor/gatehouse",
	}
	if got := strings.Split(r.summary(), ", "); !slices.Equal(got, want) {
		t.Errorf("rendered %v\nwant %v (no chart Secret: every secret comes from an existing one)", got, want)
	}

	server := r.deployment(t, "gatehouse")
	worker := r.deployment(t, "gatehouse-worker")
	wantReplicas(t, server, 2)
	wantReplicas(t, worker, 1)
	wantArgs(t, server, "serve", "--role=server")
	wantArgs(t, worker, "serve", "--role=worker")
	for _, d := range []*appsv1.Deployment{server, worker} {
		for name, want := range map[string][2]string{
			"GATEHOUSE_DATABASE_URL": {"gatehouse-db", "database-url"},
			"GATEHOUSE_REDIS_URL":    {"gatehouse-redis", "redis-url"},
		} {
			if ref := secretRef(t, d, name); ref.Name != want[0] || ref.Key != want[1] {
				t.Errorf("%s: %s from %s/%s, want %s/%s", d.Name, name, ref.Name, ref.Key, want[0], want[1])
			}
		}
		wantEnvValue(t, d, "GATEHOUSE_EXTERNAL_URL", cfg.ExternalURL)
		wantEnvValue(t, d, "GATEHOUSE_COOKIE_DOMAIN", cfg.CookieDomain)
		wantEnvValue(t, d, "GATEHOUSE_TRUSTED_PROXIES", strings.Join(cfg.TrustedProxies, ","))
	}

	in := r.find("Ingress", "gatehouse").Typed.(*networkingv1.Ingress)
	if len(in.Spec.Rules) != 1 || in.Spec.Rules[0].Host != hostOf(t, cfg.ExternalURL) {
		t.Errorf("auth Ingress rules %+v, want %s", in.Spec.Rules, hostOf(t, cfg.ExternalURL))
	}
	for k := range in.Annotations {
		if strings.Contains(k, "auth-") {
			t.Errorf("the auth host's own Ingress carries %s", k)
		}
	}
	sm := r.find("ServiceMonitor", "gatehouse").Typed.(*serviceMonitor)
	if sm.Metadata.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v: kube-prometheus-stack would not select it", sm.Metadata.Labels)
	}

	// The chart's config is gatehouse.yaml, verbatim.
	var fromFile, fromValues, fromConfigMap any
	if err := yaml.Unmarshal(readHomelab(t, "gatehouse.yaml"), &fromFile); err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config any `json:"config"`
	}
	if err := yaml.Unmarshal(readHomelab(t, "gatehouse-values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	fromValues = values.Config
	cm := r.find("ConfigMap", "gatehouse").Typed.(*corev1.ConfigMap)
	if err := yaml.Unmarshal([]byte(cm.Data["gatehouse.yaml"]), &fromConfigMap); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromFile, fromValues) {
		t.Errorf("gatehouse-values.yaml's config differs from gatehouse.yaml; copy the file into it")
	}
	if !reflect.DeepEqual(fromFile, fromConfigMap) {
		t.Errorf("the rendered ConfigMap differs from gatehouse.yaml:\n%s", cm.Data["gatehouse.yaml"])
	}

	// Every client_secret_file is a key of a Secret mounted at its directory.
	c := server.Spec.Template.Spec.Containers[0]
	for _, a := range cfg.Apps {
		if a.OIDC == nil || a.OIDC.Public {
			continue
		}
		f := a.OIDC.ClientSecretFile
		if f == "" {
			t.Errorf("OIDC client %s: no client_secret_file", a.OIDC.ClientID)
			continue
		}
		dir, key := filepath.Split(f)
		found := false
		for _, m := range c.VolumeMounts {
			if m.MountPath != strings.TrimSuffix(dir, "/") {
				continue
			}
			for _, v := range server.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.Secret != nil {
					_, ok := homelabSecrets[v.Secret.SecretName][key]
					found = ok && len(v.Secret.Items) == 0
				}
			}
		}
		if !found {
			t.Errorf("client_secret_file %s is not a key of a Secret mounted at %s", f, dir)
		}
	}
}

func TestHomelabConfigValidates(t *testing.T) {
	bin := gatehouseBinary(t)
	minimalEnv := func() []string { return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()} }

	t.Run("the file, with the client secrets it reads", func(t *testing.T) {
		// In the pod the secrets are the mounted Secret gatehouse-oidc-clients; here they
		// are files in a temporary directory, and the paths in a copy of the file point there.
		dir := t.TempDir()
		for key, val := range homelabSecrets["gatehouse-oidc-clients"] {
			writeFile(t, filepath.Join(dir, key), val+"\n")
		}
		content := strings.ReplaceAll(string(readHomelab(t, "gatehouse.yaml")), "/etc/gatehouse/oidc/", dir+"/")
		file := filepath.Join(t.TempDir(), "gatehouse.yaml")
		writeFile(t, file, content)
		if out := run(t, bin, minimalEnv(), "config", "validate", file); !strings.Contains(out, "valid") {
			t.Errorf("config validate printed %q", out)
		}
	})

	t.Run("without the mounted secrets it names the missing file", func(t *testing.T) {
		if _, err := os.Stat("/etc/gatehouse/oidc/grafana"); err == nil {
			t.Skip("/etc/gatehouse/oidc exists on this machine")
		}
		cmd := exec.Command(bin, "config", "validate", filepath.Join(homelabDir, "gatehouse.yaml"))
		cmd.Env = minimalEnv()
		out, err := cmd.CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte("client_secret_file: reading /etc/gatehouse/oidc/grafana: file not found")) {
			t.Errorf("config validate without the secret files: %v\n%s", err, out)
		}
	})

	// Exactly the environment and files the chart gives each pod, with the Secrets the
	// README has the operator create.
	r := renderHomelab(t)
	for _, name := range []string{"gatehouse", "gatehouse-worker"} {
		t.Run("pod environment of "+name, func(t *testing.T) {
			d := r.deployment(t, name)
			envv := podEnvironment(t, r, d, t.TempDir(), nil, homelabSecrets)
			out := run(t, bin, envv, "config", "validate")
			if !strings.Contains(out, "/etc_gatehouse_config/gatehouse.yaml: valid") {
				t.Errorf("config validate printed %q", out)
			}
		})
	}
}

func TestHomelabGrafana(t *testing.T) {
	cfg := homelabConfig(t)
	svc := serviceURL(t, renderHomelab(t))
	var values struct {
		EnvValueFrom map[string]corev1.EnvVarSource  `json:"envValueFrom"`
		Ini          map[string]map[string]yamlValue `json:"grafana.ini"`
	}
	js, err := yaml.YAMLToJSONStrict(readHomelab(t, "grafana-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(js, &values); err != nil {
		t.Fatal(err)
	}
	oauth := values.Ini["auth.generic_oauth"]
	get := func(k string) string { return string(oauth[k]) }
	if oauth == nil {
		t.Fatalf("grafana-values.yaml has no grafana.ini auth.generic_oauth section")
	}
	if _, leaked := oauth["client_secret"]; leaked {
		t.Errorf("client_secret is written in grafana.ini; take it from a Secret")
	}
	ref := values.EnvValueFrom["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"].SecretKeyRef
	if ref == nil || ref.Name == "" || ref.Key == "" {
		t.Errorf("GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET does not come from a Secret: %+v", values.EnvValueFrom)
	}

	app := cfg.oidcClient(t, get("client_id"))
	if app.OIDC.Public || app.OIDC.ClientSecretFile == "" {
		t.Errorf("Grafana's client %s must be confidential with client_secret_file", app.OIDC.ClientID)
	}
	root := string(values.Ini["server"]["root_url"])
	if !slices.Contains(app.OIDC.RedirectURIs, root+"/login/generic_oauth") {
		t.Errorf("redirect %s/login/generic_oauth is not registered: %v", root, app.OIDC.RedirectURIs)
	}
	for k, want := range map[string]string{
		"enabled":               "true",
		"auth_url":              cfg.ExternalURL + "/oauth2/authorize",
		"token_url":             svc + "/oauth2/token",
		"api_url":               svc + "/oauth2/userinfo",
		"groups_attribute_path": "groups",
		"role_attribute_path":   "contains(groups[*], 'admins') && 'Admin' || 'Viewer'",
		"use_refresh_token":     "true",
	} {
		if got := get(k); got != want {
			t.Errorf("auth.generic_oauth %s = %q, want %q", k, got, want)
		}
	}
	scopes := strings.Fields(get("scopes"))
	for _, s := range []string{"openid", "groups", "offline_access"} {
		if !slices.Contains(scopes, s) {
			t.Errorf("scopes %v lack %s", scopes, s)
		}
	}
	u, err := url.Parse(get("signout_redirect_url"))
	if err != nil || !strings.HasPrefix(get("signout_redirect_url"), cfg.ExternalURL+"/oauth2/end_session?") {
		t.Errorf("signout_redirect_url %q is not Gatehouse's end_session", get("signout_redirect_url"))
	} else if back := u.Query().Get("post_logout_redirect_uri"); !slices.Contains(app.OIDC.PostLogoutRedirectURIs, back) {
		t.Errorf("post_logout_redirect_uri %q is not registered: %v", back, app.OIDC.PostLogoutRedirectURIs)
	}
	if !slices.ContainsFunc(cfg.Groups, func(g struct {
		Name string `json:"name"`
	}) bool {
		return g.Name == "admins"
	}) {
		t.Errorf("the role mapping needs the group admins, which gatehouse.yaml does not declare")
	}
}

// yamlValue is a grafana.ini value: Grafana reads them all as strings.
type yamlValue string

func (v *yamlValue) UnmarshalJSON(b []byte) error {
	var s any
	if err := yaml.Unmarshal(b, &s); err != nil {
		return err
	}
	switch x := s.(type) {
	case string:
		*v = yamlValue(x)
	default:
		*v = yamlValue(strings.TrimSpace(string(b)))
	}
	return nil
}

func TestHomelabArgoCD(t *testing.T) {
	cfg := homelabConfig(t)
	var cm, rbac *corev1.ConfigMap
	for _, objs := range homelabManifests(t) {
		for _, o := range objs {
			if o.Kind == "ConfigMap" && o.Name == "argocd-cm" {
				cm = o.Typed.(*corev1.ConfigMap)
			}
			if o.Kind == "ConfigMap" && o.Name == "argocd-rbac-cm" {
				rbac = o.Typed.(*corev1.ConfigMap)
			}
		}
	}
	if cm == nil || rbac == nil {
		t.Fatalf("argocd-cm and argocd-rbac-cm must both be in the example")
	}
	for _, c := range []*corev1.ConfigMap{cm, rbac} {
		if c.Labels["app.kubernetes.io/part-of"] != "argocd" {
			t.Errorf("%s: Argo CD reads only ConfigMaps labelled app.kubernetes.io/part-of=argocd", c.Name)
		}
	}

	var oidc struct {
		Name                   string         `json:"name"`
		Issuer                 string         `json:"issuer"`
		ClientID               string         `json:"clientID"`
		ClientSecret           string         `json:"clientSecret"`
		CLIClientID            string         `json:"cliClientID"`
		RequestedScopes        []string       `json:"requestedScopes"`
		RequestedIDTokenClaims map[string]any `json:"requestedIDTokenClaims"`
		LogoutURL              string         `json:"logoutURL"`
	}
	js, err := yaml.YAMLToJSONStrict([]byte(cm.Data["oidc.config"]))
	if err != nil {
		t.Fatalf("oidc.config: %v", err)
	}
	if err := yaml.UnmarshalStrict(js, &oidc); err != nil {
		t.Fatalf("oidc.config: %v", err)
	}
	if oidc.Issuer != cfg.ExternalURL {
		t.Errorf("issuer %q, want external_url %q byte for byte", oidc.Issuer, cfg.ExternalURL)
	}
	if !strings.HasPrefix(oidc.ClientSecret, "$") {
		t.Errorf("clientSecret %q is inline; reference argocd-secret", oidc.ClientSecret)
	}
	argoURL := cm.Data["url"]
	web := cfg.oidcClient(t, oidc.ClientID)
	if web.OIDC.Public || !slices.Contains(web.OIDC.RedirectURIs, argoURL+"/auth/callback") {
		t.Errorf("client %s: want confidential with redirect %s/auth/callback, have %+v", oidc.ClientID, argoURL, web.OIDC)
	}
	// Argo CD's {{logoutRedirectURL}} is its url.
	if !slices.Contains(web.OIDC.PostLogoutRedirectURIs, argoURL) {
		t.Errorf("logout returns to %s, which is not in post_logout_redirect_uris %v", argoURL, web.OIDC.PostLogoutRedirectURIs)
	}
	cli := cfg.oidcClient(t, oidc.CLIClientID)
	if !cli.OIDC.Public || !slices.Contains(cli.OIDC.RedirectURIs, "http://localhost:8085/auth/callback") {
		t.Errorf("CLI client %s: want public with http://localhost:8085/auth/callback, have %+v", oidc.CLIClientID, cli.OIDC)
	}
	if !slices.Contains(oidc.RequestedScopes, "groups") || oidc.RequestedIDTokenClaims["groups"] == nil {
		t.Errorf("groups are not requested: scopes %v, claims %v", oidc.RequestedScopes, oidc.RequestedIDTokenClaims)
	}
	if !strings.HasPrefix(oidc.LogoutURL, cfg.ExternalURL+"/oauth2/end_session?id_token_hint={{token}}") {
		t.Errorf("logoutURL %q", oidc.LogoutURL)
	}

	if rbac.Data["policy.default"] != "role:readonly" {
		t.Errorf("policy.default = %q, want role:readonly (the seed's default)", rbac.Data["policy.default"])
	}
	if rbac.Data["scopes"] != "[groups]" {
		t.Errorf("scopes = %q, want [groups]", rbac.Data["scopes"])
	}
	if !slices.Contains(strings.Split(strings.TrimSpace(rbac.Data["policy.csv"]), "\n"), "g, admins, role:admin") {
		t.Errorf("policy.csv lacks g, admins, role:admin:\n%s", rbac.Data["policy.csv"])
	}
}

// TestHomelabScheduledBackups starts the example's worker pod (the chart's environment and
// volumes; SQLite standing in for PostgreSQL) and checks that the leading worker writes an
// encrypted backup onto the backup volume at once, that the audit log records it, and that
// the file restores (dry run) with the passphrase from the Secret.
func TestHomelabScheduledBackups(t *testing.T) {
	r := renderHomelab(t)
	worker := r.deployment(t, "gatehouse-worker")
	server := r.deployment(t, "gatehouse")
	wantEnvValue(t, worker, "GATEHOUSE_WORKER_BACKUP_DIR", "/backups")
	wantEnvValue(t, worker, "GATEHOUSE_WORKER_BACKUP_INTERVAL", "24h")
	if v := volume(t, worker, "backups"); v.PersistentVolumeClaim == nil || r.find("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName) == nil {
		t.Errorf("worker backups volume %+v is not a rendered claim", v.VolumeSource)
	}
	for _, e := range server.Spec.Template.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "GATEHOUSE_WORKER_BACKUP_") {
			t.Errorf("server pods have %s: a ReadWriteOnce backup volume cannot follow them", e.Name)
		}
	}

	bin := gatehouseBinary(t)
	p := startPod(t, bin, r, worker, map[string]string{
		"GATEHOUSE_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "gh.db"),
		"GATEHOUSE_REDIS_URL":    "",
	}, homelabSecrets)
	envOf := func(name string) string {
		for _, kv := range p.env {
			if v, ok := strings.CutPrefix(kv, name+"="); ok {
				return v
			}
		}
		t.Fatalf("the worker has no %s", name)
		return ""
	}
	dir, passFile := envOf("GATEHOUSE_WORKER_BACKUP_DIR"), envOf("GATEHOUSE_WORKER_BACKUP_PASSPHRASE_FILE")

	var files []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && len(files) == 0; time.Sleep(200 * time.Millisecond) {
		files, _ = filepath.Glob(filepath.Join(dir, "gatehouse-*.backup"))
	}
	if len(files) != 1 {
		t.Fatalf("backups in the volume: %v, want one right after the worker starts leading", files)
	}
	if status, body := p.get(t, "/healthz/worker"); status != http.StatusOK || !strings.Contains(body, "scheduled-backup") {
		t.Errorf("/healthz/worker: %d %q, want the scheduled-backup job", status, body)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file %v (%v), want mode 0600", fi, err)
	}
	out := run(t, bin, p.env, "restore", "--dry-run", "--passphrase-file", passFile, files[0])
	if !strings.Contains(out, "users") {
		t.Errorf("restore --dry-run printed %q", out)
	}
	cmd := exec.Command(bin, "restore", "--dry-run", files[0])
	cmd.Env = p.env
	if b, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("the backup restores without its passphrase: not encrypted\n%s", b)
	}
	if events := run(t, bin, p.env, "events", "--type", "backup.created"); !strings.Contains(events, "backup.created") {
		t.Errorf("no backup.created audit event:\n%s", events)
	}
	p.stop(t)
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname()
}

// TestHomelabForwardAuthDecisions starts a server pod of the example (the chart's
// environment, the example's config and Secrets; SQLite standing in for PostgreSQL and no
// Redis) and asks it what ingress-nginx would ask: the auth-url of the example Ingresses,
// with the X-Original-URL the controller sets. It checks the access the README describes
// for anonymous requests and for Grafana's machine token on the optional Prometheus app.
func TestHomelabForwardAuthDecisions(t *testing.T) {
	bin := gatehouseBinary(t)
	r := renderHomelab(t)
	d := r.deployment(t, "gatehouse")
	p := startPod(t, bin, r, d, map[string]string{
		"GATEHOUSE_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "gh.db"),
		"GATEHOUSE_REDIS_URL":    "",
	}, homelabSecrets)

	// The machine token of the declared user grafana-bot, as README.md creates it.
	out := run(t, bin, p.env, "token", "create", "--user", "grafana-bot", "--name", "grafana-datasource")
	token := ""
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "gh_") {
			token = f
		}
	}
	if token == "" {
		t.Fatalf("token create printed no gh_ token:\n%s", out)
	}

	check := func(target, bearer string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+p.httpAddr+"/api/authz/nginx", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Original-URL", target)
		req.Header.Set("X-Original-Method", "GET")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatalf("auth request for %s: %v", target, err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Remote-User")
	}
	for _, tc := range []struct {
		target, bearer string
		status         int
		user           string
	}{
		// Anonymous browsers are sent to sign in (401 with Location; ingress-nginx then
		// redirects to auth-signin), on every seed app, through the catch-all too.
		{"https://sonarr.homelab.local/", "", 401, ""},
		{"https://prowlarr.homelab.local/", "", 401, ""},
		{"https://qbittorrent.homelab.local/", "", 401, ""},
		{"https://tdarr.homelab.local/", "", 401, ""},
		{"https://homepage.homelab.local/", "", 401, ""},
		{"https://newapp.homelab.local/", "", 401, ""},
		// The *arr APIs keep their own API keys.
		{"https://sonarr.homelab.local/api/v3/queue", "", 200, ""},
		{"https://bazarr.homelab.local/api/system/status", "", 200, ""},
		// A host outside the domain that no app claims: default deny.
		{"https://nas.example.net/", "", 403, ""},
		// Prometheus: health without a token, the rest with grafana-bot's token only.
		{"https://prometheus.homelab.local/-/healthy", "", 200, ""},
		{"https://prometheus.homelab.local/api/v1/query?query=up", "", 401, ""},
		{"https://prometheus.homelab.local/api/v1/query?query=up", token, 200, "grafana-bot"},
		{"https://prometheus.homelab.local/api/v1/query?query=up", "gh_not-a-real-token", 401, ""},
		// Apps without allow_bearer ignore the token.
		{"https://sonarr.homelab.local/", token, 401, ""},
	} {
		status, user := check(tc.target, tc.bearer)
		if status != tc.status || user != tc.user {
			t.Errorf("%s (token %v): %d Remote-User %q, want %d %q", tc.target, tc.bearer != "", status, user, tc.status, tc.user)
		}
	}
}
