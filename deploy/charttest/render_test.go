package charttest

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "../helm/gatehouse"
	releaseName = "gatehouse"
	namespace   = "auth"
)

var (
	chartOnce sync.Once
	chartVal  *chart.Chart
	chartErr  error
)

// loadChart loads the chart directory once per test binary.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	chartOnce.Do(func() { chartVal, chartErr = loader.Load(chartDir) })
	if chartErr != nil {
		t.Fatalf("load chart %s: %v", chartDir, chartErr)
	}
	return chartVal
}

// object is one rendered manifest, decoded into its typed API struct.
type object struct {
	Source     string // template file it came from
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	Labels     map[string]string
	JSON       []byte
	Typed      any
}

// rendered is the decoded output of one helm render.
type rendered struct {
	Objects []*object
	Notes   string
}

func (r *rendered) all(kind string) []*object {
	var out []*object
	for _, o := range r.Objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r *rendered) find(kind, name string) *object {
	for _, o := range r.Objects {
		if o.Kind == kind && o.Name == name {
			return o
		}
	}
	return nil
}

func (r *rendered) deployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	o := r.find("Deployment", name)
	if o == nil {
		t.Fatalf("no Deployment %q; rendered: %s", name, r.summary())
	}
	return o.Typed.(*appsv1.Deployment)
}

func (r *rendered) secret(name string) *corev1.Secret {
	if o := r.find("Secret", name); o != nil {
		return o.Typed.(*corev1.Secret)
	}
	return nil
}

func (r *rendered) summary() string {
	var s []string
	for _, o := range r.Objects {
		s = append(s, o.Kind+"/"+o.Name)
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// renderOptions tune one render.
type renderOptions struct {
	release   string
	upgrade   bool
	lookupFor engine.ClientProvider // nil: no cluster (helm template)
}

// render renders the chart with the given values YAML the way `helm install` does
// (defaults coalesced, values.schema.json enforced) and decodes every manifest strictly.
// Without a cluster the engine runs in strict mode, so a template that reads a value
// missing from values.yaml fails too.
func render(t *testing.T, valuesYAML string, o renderOptions) (*rendered, error) {
	t.Helper()
	ch := loadChart(t)
	vals, err := chartutil.ReadValues([]byte(valuesYAML))
	if err != nil {
		t.Fatalf("test values do not parse: %v", err)
	}
	if o.release == "" {
		o.release = releaseName
	}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name:      o.release,
		Namespace: namespace,
		Revision:  1,
		IsInstall: !o.upgrade,
		IsUpgrade: o.upgrade,
	}, nil)
	if err != nil {
		return nil, err
	}
	var files map[string]string
	if o.lookupFor != nil {
		files, err = engine.RenderWithClientProvider(ch, top, o.lookupFor)
	} else {
		files, err = engine.Engine{Strict: true}.Render(ch, top)
	}
	if err != nil {
		return nil, err
	}
	if os.Getenv("CHARTTEST_DUMP") != "" { // CHARTTEST_DUMP=1 go test -v -run NAME: show the manifests
		for _, name := range slices.Sorted(maps.Keys(files)) {
			t.Logf("# %s\n%s", name, files[name])
		}
	}
	return decodeAll(t, files), nil
}

// mustRender renders and fails the test on a render error.
func mustRender(t *testing.T, valuesYAML string, o renderOptions) *rendered {
	t.Helper()
	r, err := render(t, valuesYAML, o)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeAll splits every rendered template into documents and decodes each one.
func decodeAll(t *testing.T, files map[string]string) *rendered {
	t.Helper()
	r := &rendered{}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		content := files[name]
		base := name[strings.LastIndex(name, "/")+1:]
		switch {
		case strings.HasPrefix(base, "_"):
			continue
		case base == "NOTES.txt":
			r.Notes = content
			continue
		}
		for i, doc := range docSeparator.Split(content, -1) {
			if blankYAML(doc) {
				continue
			}
			obj, err := decode([]byte(doc))
			if err != nil {
				t.Fatalf("%s document %d: %v\n----\n%s", name, i, err, numbered(doc))
			}
			obj.Source = name
			r.Objects = append(r.Objects, obj)
		}
	}
	return r
}

// blankYAML reports whether a document holds only comments and whitespace.
func blankYAML(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		l := strings.TrimSpace(line)
		if l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func numbered(doc string) string {
	var b strings.Builder
	for i, l := range strings.Split(doc, "\n") {
		fmt.Fprintf(&b, "%3d | %s\n", i+1, l)
	}
	return b.String()
}

// serviceMonitor is the part of the Prometheus Operator's CRD the chart renders. Decoding
// with unknown fields disallowed catches misspelt fields as for the built-in types.
type serviceMonitor struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   metaObject         `json:"metadata"`
	Spec       serviceMonitorSpec `json:"spec"`
}

type metaObject struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type serviceMonitorSpec struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	Endpoints []struct {
		Port              string           `json:"port"`
		Path              string           `json:"path"`
		Scheme            string           `json:"scheme,omitempty"`
		Interval          string           `json:"interval,omitempty"`
		ScrapeTimeout     string           `json:"scrapeTimeout,omitempty"`
		Relabelings       []map[string]any `json:"relabelings,omitempty"`
		MetricRelabelings []map[string]any `json:"metricRelabelings,omitempty"`
	} `json:"endpoints"`
}

// newTyped returns the typed struct for an apiVersion/kind the chart may render.
func newTyped(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1 Secret":
		return &corev1.Secret{}, true
	case "v1 Service":
		return &corev1.Service{}, true
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, true
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, true
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "networking.k8s.io/v1 Ingress":
		return &networkingv1.Ingress{}, true
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &serviceMonitor{}, true
	}
	return nil, false
}

// decode converts one YAML document to JSON (duplicate keys are errors) and decodes it
// case-sensitively into its typed struct, failing on unknown or duplicate fields — the
// API server's own strict field validation.
func decode(doc []byte) (*object, error) { return decodeWith(doc, newTyped) }

// decodeWith is decode with the set of known kinds given by typedFor.
func decodeWith(doc []byte, typedFor func(apiVersion, kind string) (any, bool)) (*object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, fmt.Errorf("empty document")
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &head); err != nil {
		return nil, fmt.Errorf("type meta: %w", err)
	}
	typed, ok := typedFor(head.APIVersion, head.Kind)
	if !ok {
		return nil, fmt.Errorf("unexpected object %s %s (add it to newTyped)", head.APIVersion, head.Kind)
	}
	strict, err := kjson.UnmarshalStrict(js, typed)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", head.Kind, err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("decode %s strictly: %v", head.Kind, strict)
	}
	return &object{
		APIVersion: head.APIVersion,
		Kind:       head.Kind,
		Name:       head.Metadata.Name,
		Namespace:  head.Metadata.Namespace,
		Labels:     head.Metadata.Labels,
		JSON:       js,
		Typed:      typed,
	}, nil
}

// secretValue returns a decoded key of a rendered Secret (data is base64 in the manifest,
// and the typed decode already turned it into bytes).
func secretValue(s *corev1.Secret, key string) (string, bool) {
	if s == nil {
		return "", false
	}
	if v, ok := s.Data[key]; ok {
		return string(v), true
	}
	if v, ok := s.StringData[key]; ok {
		return v, true
	}
	return "", false
}
