package oidcop

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// BenchmarkClientCredentials measures the token endpoint in process (no
// network), to profile what bench/oidc/run.sh measures end to end.
func BenchmarkClientCredentials(b *testing.B) {
	p, st := newTestProvider(b, &clock{}, func(o *Options) { o.Now = time.Now })
	_ = st.PutOIDCClient(b.Context(), model.OIDCClient{ClientID: "robot", AppSlug: "robot", SecretHash: p.o.SecretHasher.Hash("pw-0123456789abcdef"),
		SecretFromConfig: true, GrantTypes: []string{model.GrantClientCredentials}})
	mux := http.NewServeMux()
	p.RegisterBackChannel(mux)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("robot", "pw-0123456789abcdef")
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
}
