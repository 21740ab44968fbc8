package charttest

import (
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// fakeCluster answers the chart's `lookup` calls from in-memory objects, the way a
// real `helm upgrade` sees the live cluster.
type fakeCluster struct{ client dynamic.Interface }

func newFakeCluster(t *testing.T, objs ...runtime.Object) fakeCluster {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fakeCluster{client: dynamicfake.NewSimpleDynamicClient(scheme, objs...)}
}

func (f fakeCluster) GetClientFor(apiVersion, kind string) (dynamic.NamespaceableResourceInterface, bool, error) {
	if apiVersion == "v1" && kind == "Secret" {
		return f.client.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}), true, nil
	}
	return nil, false, fmt.Errorf("the chart looked up %s %s; only Secrets are expected", apiVersion, kind)
}

func liveSecret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Data:       map[string][]byte{},
	}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestSecretKeyLifecycle(t *testing.T) {
	const kept = "an-existing-key-that-must-survive-every-upgrade-0123456789"
	values := "externalURL: " + externalURL + "\ndatabase: {url: 'postgres://gatehouse@pg/gatehouse'}\n"

	t.Run("first install generates a key", func(t *testing.T) {
		r := mustRender(t, values, renderOptions{lookupFor: newFakeCluster(t)})
		checkInvariants(t, r, external{})
		wantGeneratedKey(t, r.secret("gatehouse"))
	})

	t.Run("upgrade keeps the live key and refreshes the rest", func(t *testing.T) {
		cluster := newFakeCluster(t, liveSecret("gatehouse", map[string]string{
			"secret-key":   kept,
			"database-url": "postgres://old@pg/gatehouse",
		}))
		for i := range 2 {
			r := mustRender(t, values, renderOptions{upgrade: true, lookupFor: cluster})
			s := r.secret("gatehouse")
			if v, _ := secretValue(s, "secret-key"); v != kept {
				t.Fatalf("upgrade %d replaced the secret key: got %q", i+1, v)
			}
			if v, _ := secretValue(s, "database-url"); v != "postgres://gatehouse@pg/gatehouse" {
				t.Errorf("database-url = %q, want the new value", v)
			}
		}
	})

	t.Run("the key is kept whatever the release's other values", func(t *testing.T) {
		cluster := newFakeCluster(t, liveSecret("gatehouse", map[string]string{"secret-key": kept}))
		r := mustRender(t, "externalURL: "+externalURL+"\nserver: {replicas: 5}\n", renderOptions{upgrade: true, lookupFor: cluster})
		if v, _ := secretValue(r.secret("gatehouse"), "secret-key"); v != kept {
			t.Fatalf("secret key replaced: %q", v)
		}
	})

	t.Run("a live Secret without a key gets one", func(t *testing.T) {
		cluster := newFakeCluster(t, liveSecret("gatehouse", map[string]string{"redis-url": "redis://x"}))
		r := mustRender(t, values, renderOptions{upgrade: true, lookupFor: cluster})
		wantGeneratedKey(t, r.secret("gatehouse"))
	})

	t.Run("an explicit secretKey wins over the live one", func(t *testing.T) {
		explicit := "explicit-explicit-explicit-explicit-0123"
		cluster := newFakeCluster(t, liveSecret("gatehouse", map[string]string{"secret-key": kept}))
		r := mustRender(t, values+"secretKey: "+explicit+"\n", renderOptions{upgrade: true, lookupFor: cluster})
		if v, _ := secretValue(r.secret("gatehouse"), "secret-key"); v != explicit {
			t.Fatalf("secret-key = %q, want the explicit value", v)
		}
	})

	t.Run("another release's Secret is not borrowed", func(t *testing.T) {
		cluster := newFakeCluster(t, liveSecret("other-gatehouse", map[string]string{"secret-key": kept}))
		r := mustRender(t, values, renderOptions{lookupFor: cluster})
		if v := wantGeneratedKey(t, r.secret("gatehouse")); v == kept {
			t.Fatalf("the key of another release's Secret was used")
		}
	})

	t.Run("helm template (no cluster): a new key per render, pods unchanged", func(t *testing.T) {
		a := mustRender(t, values, renderOptions{})
		b := mustRender(t, values, renderOptions{})
		ka := wantGeneratedKey(t, a.secret("gatehouse"))
		kb := wantGeneratedKey(t, b.secret("gatehouse"))
		if ka == kb {
			t.Errorf("two renders generated the same key %q: not random", ka)
		}
		// The pods must not change with the key, or every ArgoCD sync would roll them.
		if !reflect.DeepEqual(a.deployment(t, "gatehouse").Spec.Template, b.deployment(t, "gatehouse").Spec.Template) {
			t.Errorf("the pod template depends on the generated key")
		}
	})

	t.Run("existingSecret: the chart generates nothing", func(t *testing.T) {
		r := mustRender(t, "externalURL: "+externalURL+"\nexistingSecret: gatehouse-keys\n", renderOptions{lookupFor: newFakeCluster(t)})
		if s := r.secret("gatehouse"); s != nil {
			t.Errorf("a Secret %v was rendered although every value comes from existingSecret", secretKeys(s))
		}
	})
}
