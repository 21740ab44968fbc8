package charttest

import (
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestHelmLint runs `helm lint --strict` (the SDK's linter: Chart.yaml, values against the
// schema, template syntax, deprecated APIs for the given Kubernetes version) with the
// SQLite and the production values.
func TestHelmLint(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"sqlite": {"externalURL": externalURL},
		"production": {
			"externalURL": externalURL,
			"database":    map[string]any{"url": "postgres://gatehouse@pg/gatehouse"},
			"redis":       map[string]any{"url": "redis://redis:6379/0"},
			"server":      map[string]any{"replicas": 3},
			"worker":      map[string]any{"enabled": true},
			"ingress":     map[string]any{"enabled": true, "tls": []any{map[string]any{"secretName": "auth-tls"}}},
			"metrics":     map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
			"backup":      map[string]any{"enabled": true, "passphraseSecret": map[string]any{"name": "gatehouse-backup"}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			kube, err := chartutil.ParseKubeVersion("v1.33.0")
			if err != nil {
				t.Fatal(err)
			}
			res := lint.AllWithKubeVersion(chartDir, values, namespace, kube)
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint: %s", m)
				}
			}
		})
	}
}
