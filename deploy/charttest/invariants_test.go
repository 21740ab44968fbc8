package charttest

import (
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// external names a case may reference without rendering them (existingSecret & co).
type external struct {
	secrets map[string]bool
	claims  map[string]bool
}

// checkInvariants holds for every successful render: what the API server would reject
// or what would break at run time even though each object decodes (dangling references,
// selectors that select nothing, probes on ports that do not exist, weak security).
func checkInvariants(t *testing.T, r *rendered, ext external) {
	t.Helper()
	seen := map[string]bool{}
	for _, o := range r.Objects {
		id := o.Kind + "/" + o.Name
		if seen[id] {
			t.Errorf("%s rendered twice", id)
		}
		seen[id] = true
		for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
			t.Errorf("%s: name: %s", id, msg)
		}
		if o.Kind == "Service" {
			for _, msg := range validation.IsDNS1035Label(o.Name) {
				t.Errorf("%s: Service name: %s", id, msg)
			}
		}
		if o.Namespace != namespace {
			t.Errorf("%s: namespace %q, want %q", id, o.Namespace, namespace)
		}
		checkLabels(t, id, o.Labels)
		if o.Labels["app.kubernetes.io/instance"] == "" {
			t.Errorf("%s: no app.kubernetes.io/instance label", id)
		}
	}

	configMaps := map[string]*corev1.ConfigMap{}
	for _, o := range r.all("ConfigMap") {
		configMaps[o.Name] = o.Typed.(*corev1.ConfigMap)
	}
	secrets := map[string]*corev1.Secret{}
	for _, o := range r.all("Secret") {
		secrets[o.Name] = o.Typed.(*corev1.Secret)
	}
	claims := map[string]bool{}
	for _, o := range r.all("PersistentVolumeClaim") {
		claims[o.Name] = true
	}
	serviceAccounts := map[string]bool{"default": true}
	for _, o := range r.all("ServiceAccount") {
		serviceAccounts[o.Name] = true
	}
	secretHasKey := func(name, key string) bool {
		if ext.secrets[name] {
			return true
		}
		_, ok := secretValue(secrets[name], key)
		return ok
	}

	var pods []podOf
	for _, o := range r.all("Deployment") {
		d := o.Typed.(*appsv1.Deployment)
		pods = append(pods, podOf{name: d.Name, labels: d.Spec.Template.Labels, spec: &d.Spec.Template.Spec})
		checkDeployment(t, d, configMaps, secretHasKey, claims, ext, serviceAccounts)
	}

	services := map[string]*corev1.Service{}
	for _, o := range r.all("Service") {
		s := o.Typed.(*corev1.Service)
		services[s.Name] = s
		selected := selectedPods(s.Spec.Selector, pods)
		if len(selected) == 0 {
			t.Errorf("Service %s: selector %v matches no pod template", s.Name, s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			for _, msg := range validation.IsValidPortName(p.Name) {
				t.Errorf("Service %s port %q: %s", s.Name, p.Name, msg)
			}
			if p.TargetPort.StrVal == "" {
				continue
			}
			for _, pod := range selected {
				if !hasContainerPort(pod.spec, p.TargetPort.StrVal) {
					t.Errorf("Service %s: targetPort %q is not a container port of %s", s.Name, p.TargetPort.StrVal, pod.name)
				}
			}
		}
	}

	for _, o := range r.all("PodDisruptionBudget") {
		p := o.Typed.(*policyv1.PodDisruptionBudget)
		sel := p.Spec.Selector
		if sel == nil || len(selectedPods(sel.MatchLabels, pods)) == 0 {
			t.Errorf("PodDisruptionBudget %s selects no pod template", p.Name)
		}
	}

	for _, o := range r.all("Ingress") {
		in := o.Typed.(*networkingv1.Ingress)
		for _, rule := range in.Spec.Rules {
			for _, msg := range validation.IsDNS1123Subdomain(rule.Host) {
				t.Errorf("Ingress %s: host %q: %s", in.Name, rule.Host, msg)
			}
			if rule.HTTP == nil {
				t.Errorf("Ingress %s: rule without http", in.Name)
				continue
			}
			for _, p := range rule.HTTP.Paths {
				b := p.Backend.Service
				svc := services[b.Name]
				if svc == nil {
					t.Errorf("Ingress %s: backend Service %q is not rendered", in.Name, b.Name)
					continue
				}
				found := false
				for _, sp := range svc.Spec.Ports {
					if (b.Port.Name != "" && sp.Name == b.Port.Name) || (b.Port.Number != 0 && sp.Port == b.Port.Number) {
						found = true
					}
				}
				if !found {
					t.Errorf("Ingress %s: Service %s has no port %+v", in.Name, b.Name, b.Port)
				}
			}
		}
	}

	for _, o := range r.all("ServiceMonitor") {
		sm := o.Typed.(*serviceMonitor)
		if sm.APIVersion != "monitoring.coreos.com/v1" {
			t.Errorf("ServiceMonitor apiVersion %q", sm.APIVersion)
		}
		var matched []*corev1.Service
		for _, s := range services {
			if labels.SelectorFromSet(sm.Spec.Selector.MatchLabels).Matches(labels.Set(s.Labels)) {
				matched = append(matched, s)
			}
		}
		if len(matched) != 1 {
			t.Errorf("ServiceMonitor %s: selector matches %d Services, want 1", sm.Metadata.Name, len(matched))
		}
		for _, ep := range sm.Spec.Endpoints {
			for _, s := range matched {
				if !hasServicePort(s, ep.Port) {
					t.Errorf("ServiceMonitor %s: Service %s has no port %q", sm.Metadata.Name, s.Name, ep.Port)
				}
			}
		}
	}
}

type podOf struct {
	name   string
	labels map[string]string
	spec   *corev1.PodSpec
}

func selectedPods(selector map[string]string, pods []podOf) []podOf {
	if len(selector) == 0 {
		return nil
	}
	var out []podOf
	for _, p := range pods {
		if labels.SelectorFromSet(selector).Matches(labels.Set(p.labels)) {
			out = append(out, p)
		}
	}
	return out
}

func hasContainerPort(spec *corev1.PodSpec, name string) bool {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

func hasServicePort(s *corev1.Service, name string) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

func checkLabels(t *testing.T, id string, l map[string]string) {
	t.Helper()
	if l["app.kubernetes.io/name"] == "" {
		t.Errorf("%s: no app.kubernetes.io/name label", id)
	}
	for k, v := range l {
		for _, msg := range validation.IsQualifiedName(k) {
			t.Errorf("%s: label key %q: %s", id, k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			t.Errorf("%s: label %s=%q: %s", id, k, v, msg)
		}
	}
}

func checkDeployment(t *testing.T, d *appsv1.Deployment, configMaps map[string]*corev1.ConfigMap,
	secretHasKey func(name, key string) bool, claims map[string]bool, ext external, serviceAccounts map[string]bool) {
	t.Helper()
	id := "Deployment " + d.Name
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 1 {
		t.Errorf("%s: replicas not set", id)
	}
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		t.Fatalf("%s: no selector", id)
	}
	if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("%s: selector %v does not match the pod template labels %v (the API server rejects this)",
			id, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	checkLabels(t, id+" pod template", d.Spec.Template.Labels)
	for _, k := range []string{"checksum/config", "checksum/secret"} {
		if len(d.Spec.Template.Annotations[k]) != 64 {
			t.Errorf("%s: pod annotation %s = %q, want a sha256", id, k, d.Spec.Template.Annotations[k])
		}
	}

	pod := &d.Spec.Template.Spec
	if !serviceAccounts[pod.ServiceAccountName] {
		t.Errorf("%s: ServiceAccount %q is not rendered", id, pod.ServiceAccountName)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: the service account token is mounted; Gatehouse never calls the API", id)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", id)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile is not RuntimeDefault", id)
	}
	if psc == nil || psc.FSGroup == nil || *psc.FSGroup != 65532 {
		t.Errorf("%s: pod fsGroup is not 65532 (the PVC and secret-key file would be unreadable)", id)
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			if configMaps[v.ConfigMap.Name] == nil {
				t.Errorf("%s: volume %s: ConfigMap %q is not rendered", id, v.Name, v.ConfigMap.Name)
			}
			for _, it := range v.ConfigMap.Items {
				if _, ok := configMaps[v.ConfigMap.Name].Data[it.Key]; !ok {
					t.Errorf("%s: volume %s: ConfigMap has no key %q", id, v.Name, it.Key)
				}
			}
		case v.Secret != nil:
			for _, it := range v.Secret.Items {
				if !secretHasKey(v.Secret.SecretName, it.Key) {
					t.Errorf("%s: volume %s: Secret %q (key %q) is neither rendered nor external", id, v.Name, v.Secret.SecretName, it.Key)
				}
			}
		case v.PersistentVolumeClaim != nil:
			n := v.PersistentVolumeClaim.ClaimName
			if !claims[n] && !ext.claims[n] {
				t.Errorf("%s: volume %s: claim %q is neither rendered nor external", id, v.Name, n)
			}
		}
	}

	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", id, len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("%s: container has no securityContext", id)
	default:
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", id)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", id)
		}
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: container runAsNonRoot is not true", id)
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
			t.Errorf("%s: capabilities %+v, want drop [ALL] and nothing added", id, sc.Capabilities)
		}
		if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: container seccompProfile is not RuntimeDefault", id)
		}
	}
	for _, p := range c.Ports {
		for _, msg := range validation.IsValidPortName(p.Name) {
			t.Errorf("%s: port %q: %s", id, p.Name, msg)
		}
	}
	if !hasContainerPort(pod, "http") || !hasContainerPort(pod, "metrics") {
		t.Errorf("%s: container ports %+v, want http and metrics", id, c.Ports)
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/healthz/live"},
		{"livenessProbe", c.LivenessProbe, "/healthz/live"},
		{"readinessProbe", c.ReadinessProbe, "/healthz/ready"},
	} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s", id, pr.name)
			continue
		}
		if pr.probe.HTTPGet.Path != pr.path {
			t.Errorf("%s: %s path %q, want %q", id, pr.name, pr.probe.HTTPGet.Path, pr.path)
		}
		if !hasContainerPort(pod, pr.probe.HTTPGet.Port.String()) {
			t.Errorf("%s: %s port %q is not a container port", id, pr.name, pr.probe.HTTPGet.Port.String())
		}
	}
	checkGracePeriod(t, id, d, c)
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %+v: want cpu+memory requests and a memory limit", id, c.Resources)
	}

	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			t.Errorf("%s: volumeMount %s has no volume", id, m.Name)
		}
		mounts[m.MountPath] = m
	}
	if _, ok := mounts["/data"]; !ok {
		t.Errorf("%s: nothing mounted at /data (the root filesystem is read-only)", id)
	}

	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("%s: env %s set twice", id, e.Name)
		}
		env[e.Name] = e
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			optional := ref.Optional != nil && *ref.Optional
			if !optional && !secretHasKey(ref.Name, ref.Key) {
				t.Errorf("%s: env %s: Secret %q key %q is neither rendered nor external", id, e.Name, ref.Name, ref.Key)
			}
		}
	}
	if env["GATEHOUSE_DATA_DIR"].Value != "/data" {
		t.Errorf("%s: GATEHOUSE_DATA_DIR = %q, want /data", id, env["GATEHOUSE_DATA_DIR"].Value)
	}
	// The files the env points at must be what the mounts provide.
	checkFileFromVolume(t, id, env["GATEHOUSE_CONFIG"].Value, mounts, volumes, func(v corev1.Volume, key string) bool {
		return v.ConfigMap != nil && configMaps[v.ConfigMap.Name] != nil && configMaps[v.ConfigMap.Name].Data[key] != ""
	})
	checkFileFromVolume(t, id, env["GATEHOUSE_SECRET_KEY_FILE"].Value, mounts, volumes, func(v corev1.Volume, key string) bool {
		if v.Secret == nil {
			return false
		}
		for _, it := range v.Secret.Items {
			if it.Path == key {
				return secretHasKey(v.Secret.SecretName, it.Key)
			}
		}
		return false
	})
}

// checkFileFromVolume checks that file lies directly in a mounted volume and that ok
// confirms the volume provides it.
func checkFileFromVolume(t *testing.T, id, file string, mounts map[string]corev1.VolumeMount,
	volumes map[string]corev1.Volume, ok func(corev1.Volume, string) bool) {
	t.Helper()
	if file == "" {
		t.Errorf("%s: a file env variable is empty", id)
		return
	}
	dir, base := path.Split(file)
	m, found := mounts[strings.TrimSuffix(dir, "/")]
	if !found {
		t.Errorf("%s: %s: nothing is mounted at %s", id, file, dir)
		return
	}
	if !m.ReadOnly {
		t.Errorf("%s: mount %s should be read-only", id, m.MountPath)
	}
	if !ok(volumes[m.Name], base) {
		t.Errorf("%s: volume %s does not provide %s", id, m.Name, base)
	}
}

// shutdownTimeout is how long the binary lets in-flight requests finish after its drain
// delay (app.ServeOptions.ShutdownTimeout's default).
const shutdownTimeout = 30 * time.Second

// drainDelay is how long the container keeps serving after SIGTERM with readiness off:
// GATEHOUSE_SHUTDOWN_DELAY when set, else the binary's default for its role (5 s for
// --role=server, none for all and worker).
func drainDelay(t *testing.T, id string, c corev1.Container) time.Duration {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == "GATEHOUSE_SHUTDOWN_DELAY" {
			d, err := time.ParseDuration(e.Value)
			if err != nil || d < 0 {
				t.Errorf("%s: GATEHOUSE_SHUTDOWN_DELAY = %q is not a duration", id, e.Value)
			}
			return d
		}
	}
	if slices.Contains(c.Args, "--role=server") {
		return 5 * time.Second
	}
	return 0
}

// checkGracePeriod checks that the kubelet waits long enough after the preStop hook and
// SIGTERM for the drain delay and the in-flight requests, and never less than 35 s for pods
// that serve traffic.
func checkGracePeriod(t *testing.T, id string, d *appsv1.Deployment, c corev1.Container) {
	t.Helper()
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	need := drainDelay(t, id, c) + shutdownTimeout
	if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		need += time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	if d.Spec.Template.Labels["app.kubernetes.io/component"] == "server" {
		need = max(need, 35*time.Second)
	}
	if grace == nil || time.Duration(*grace)*time.Second < need {
		t.Errorf("%s: terminationGracePeriodSeconds = %v, want at least %v (preStop + drain delay + %v in-flight)",
			id, grace, need, shutdownTimeout)
	}
}
