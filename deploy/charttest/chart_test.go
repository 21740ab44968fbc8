package charttest

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
)

const externalURL = "https://auth.homelab.local"

// chartCase is one set of values, rendered and checked: first by checkInvariants, then by
// its own check.
type chartCase struct {
	name    string
	release string
	values  string
	ext     external
	// kinds lists every object the render must produce ("Kind/name"), nothing more.
	kinds []string
	check func(t *testing.T, r *rendered)
}

func TestChartRenders(t *testing.T) {
	cases := []chartCase{
		{
			name:   "sqlite defaults: one pod, Recreate, PVC",
			values: `externalURL: ` + externalURL,
			kinds: []string{
				"ConfigMap/gatehouse", "Deployment/gatehouse", "PersistentVolumeClaim/gatehouse-data",
				"Secret/gatehouse", "Service/gatehouse", "Service/gatehouse-metrics", "ServiceAccount/gatehouse",
			},
			check: func(t *testing.T, r *rendered) {
				d := r.deployment(t, "gatehouse")
				wantReplicas(t, d, 1)
				if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate != nil {
					t.Errorf("strategy %+v, want Recreate (single SQLite writer on a RWO volume)", d.Spec.Strategy)
				}
				wantArgs(t, d, "serve")
				if v := dataVolume(t, d); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "gatehouse-data" {
					t.Errorf("data volume %+v, want PVC gatehouse-data", v.VolumeSource)
				}
				pvc := r.find("PersistentVolumeClaim", "gatehouse-data").Typed.(*corev1.PersistentVolumeClaim)
				if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
					t.Errorf("PVC size %s, want 1Gi", got.String())
				}
				if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
					t.Errorf("PVC access modes %v", pvc.Spec.AccessModes)
				}
				if pvc.Spec.StorageClassName != nil {
					t.Errorf("PVC storageClassName %q set, want the cluster default", *pvc.Spec.StorageClassName)
				}
				if pvc.Annotations["helm.sh/resource-policy"] != "keep" {
					t.Errorf("PVC is deleted on uninstall: the SQLite database would go with it")
				}
				for _, name := range []string{"GATEHOUSE_DATABASE_URL", "GATEHOUSE_REDIS_URL", "GATEHOUSE_BOOTSTRAP_PASSWORD", "GATEHOUSE_COOKIE_DOMAIN", "GATEHOUSE_TRUSTED_PROXIES"} {
					if e := env(d, name); e != nil {
						t.Errorf("%s is set (%+v) without a value for it", name, e)
					}
				}
				wantEnvValue(t, d, "GATEHOUSE_EXTERNAL_URL", externalURL)
				wantEnvValue(t, d, "GATEHOUSE_LISTEN", ":9000")
				wantEnvValue(t, d, "GATEHOUSE_METRICS_LISTEN", ":9300")
				wantEnvValue(t, d, "GATEHOUSE_CONFIG", "/etc/gatehouse/config/gatehouse.yaml")
				wantEnvValue(t, d, "GATEHOUSE_SECRET_KEY_FILE", "/etc/gatehouse/secret/secret-key")
				if e := env(d, "GOMEMLIMIT"); e == nil || e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil ||
					e.ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
					t.Errorf("GOMEMLIMIT = %+v, want the memory limit", e)
				}
				c := d.Spec.Template.Spec.Containers[0]
				wantQuantity(t, "cpu request", c.Resources.Requests[corev1.ResourceCPU], "50m")
				wantQuantity(t, "memory request", c.Resources.Requests[corev1.ResourceMemory], "64Mi")
				wantQuantity(t, "memory limit", c.Resources.Limits[corev1.ResourceMemory], "256Mi")
				if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
					t.Errorf("CPU limit set: hashing bursts would be throttled")
				}
				if c.Lifecycle != nil {
					t.Errorf("lifecycle %+v rendered by default; preStopSleepSeconds is 0", c.Lifecycle)
				}
				wantGrace(t, d, 35)
				if e := env(d, "GATEHOUSE_SHUTDOWN_DELAY"); e != nil {
					t.Errorf("GATEHOUSE_SHUTDOWN_DELAY = %+v with SQLite: one pod has no replica to drain to", e)
				}
				if d.Spec.Template.Spec.Affinity != nil {
					t.Errorf("anti-affinity for a single replica: %+v", d.Spec.Template.Spec.Affinity)
				}

				s := r.secret("gatehouse")
				if keys := secretKeys(s); !slices.Equal(keys, []string{"secret-key"}) {
					t.Errorf("Secret keys %v, want only secret-key", keys)
				}
				wantGeneratedKey(t, s)
				if s.Annotations["helm.sh/resource-policy"] != "keep" {
					t.Errorf("Secret is deleted on uninstall: the secret key would be lost")
				}

				wantServicePort(t, r, "gatehouse", "http", 9000)
				wantServicePort(t, r, "gatehouse-metrics", "metrics", 9300)
				cm := r.find("ConfigMap", "gatehouse").Typed.(*corev1.ConfigMap)
				if !strings.Contains(cm.Data["gatehouse.yaml"], "{}") {
					t.Errorf("empty config should render as {}: %q", cm.Data["gatehouse.yaml"])
				}
				wantNotes(t, r,
					"http://gatehouse.auth.svc.cluster.local:9000/api/authz/nginx",
					"kubectl -n auth logs deploy/gatehouse | grep -i password",
					"Embedded SQLite under /data on PVC \"gatehouse-data\"",
					"kubectl -n auth get secret gatehouse",
					"trustedProxies is empty",
					`auth-signin: "https://auth.homelab.local/gate/start"`)
				wantNoNotes(t, r, "nginx.ingress.kubernetes.io/auth-snippet", "/start?rd=")
			},
		},
		{
			name: "sqlite forces one replica and no worker; existing claim",
			values: `
externalURL: ` + externalURL + `
cookieDomain: homelab.local
trustedProxies: [10.42.0.0/16, 10.43.0.0/16]
server:
  replicas: 3
worker:
  enabled: true
  replicas: 2
persistence:
  existingClaim: gatehouse-sqlite
`,
			ext: external{claims: map[string]bool{"gatehouse-sqlite": true}},
			kinds: []string{
				"ConfigMap/gatehouse", "Deployment/gatehouse", "Secret/gatehouse", "Service/gatehouse",
				"Service/gatehouse-metrics", "ServiceAccount/gatehouse",
			},
			check: func(t *testing.T, r *rendered) {
				d := r.deployment(t, "gatehouse")
				wantReplicas(t, d, 1)
				if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
					t.Errorf("strategy %s, want Recreate", d.Spec.Strategy.Type)
				}
				wantArgs(t, d, "serve")
				if v := dataVolume(t, d); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "gatehouse-sqlite" {
					t.Errorf("data volume %+v, want the existing claim", v.VolumeSource)
				}
				wantEnvValue(t, d, "GATEHOUSE_COOKIE_DOMAIN", "homelab.local")
				wantEnvValue(t, d, "GATEHOUSE_TRUSTED_PROXIES", "10.42.0.0/16,10.43.0.0/16")
				wantNotes(t, r, "server.replicas=3 was ignored", "worker.enabled was ignored", "*.homelab.local")
				if strings.Contains(r.Notes, "trustedProxies is empty") {
					t.Errorf("NOTES warn about trustedProxies although they are set")
				}
			},
		},
		{
			name: "sqlite without persistence uses an emptyDir and says so",
			values: `
externalURL: http://localhost:9000
persistence:
  enabled: false
`,
			kinds: []string{
				"ConfigMap/gatehouse", "Deployment/gatehouse", "Secret/gatehouse", "Service/gatehouse",
				"Service/gatehouse-metrics", "ServiceAccount/gatehouse",
			},
			check: func(t *testing.T, r *rendered) {
				d := r.deployment(t, "gatehouse")
				wantReplicas(t, d, 1)
				if v := dataVolume(t, d); v.EmptyDir == nil {
					t.Errorf("data volume %+v, want emptyDir", v.VolumeSource)
				}
				wantNotes(t, r, "EVERYTHING IS LOST WHEN THE POD RESTARTS")
			},
		},
		{
			name:    "external PostgreSQL and Redis, 3 servers, 2 workers, ServiceMonitor, ingress TLS",
			release: "sso",
			values: `
externalURL: ` + externalURL + `
cookieDomain: homelab.local
database:
  url: postgres://gatehouse:s3cret@pg-rw.db.svc:5432/gatehouse?sslmode=require
redis:
  url: redis://:r3dis@redis-master.db.svc:6379/0
server:
  replicas: 3
  preStopSleepSeconds: 5
  terminationGracePeriodSeconds: 40
worker:
  enabled: true
  replicas: 2
metrics:
  serviceMonitor:
    enabled: true
    labels:
      release: kube-prometheus-stack
ingress:
  enabled: true
  className: nginx
  annotations:
    cert-manager.io/cluster-issuer: homelab-ca
  tls:
    - secretName: auth-tls
config:
  log:
    level: debug
`,
			kinds: []string{
				"ConfigMap/sso-gatehouse", "Deployment/sso-gatehouse", "Deployment/sso-gatehouse-worker",
				"Ingress/sso-gatehouse", "PodDisruptionBudget/sso-gatehouse", "Secret/sso-gatehouse",
				"Service/sso-gatehouse", "Service/sso-gatehouse-metrics", "ServiceAccount/sso-gatehouse",
				"ServiceMonitor/sso-gatehouse",
			},
			check: func(t *testing.T, r *rendered) {
				server := r.deployment(t, "sso-gatehouse")
				worker := r.deployment(t, "sso-gatehouse-worker")
				wantReplicas(t, server, 3)
				wantReplicas(t, worker, 2)
				wantArgs(t, server, "serve", "--role=server")
				wantArgs(t, worker, "serve", "--role=worker")
				for _, d := range []*appsv1.Deployment{server, worker} {
					ru := d.Spec.Strategy.RollingUpdate
					if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
						ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
						t.Errorf("%s: strategy %+v, want RollingUpdate with maxUnavailable 0", d.Name, d.Spec.Strategy)
					}
					if v := dataVolume(t, d); v.EmptyDir == nil {
						t.Errorf("%s: data volume %+v, want emptyDir (no PVC with PostgreSQL)", d.Name, v.VolumeSource)
					}
					ref := secretRef(t, d, "GATEHOUSE_DATABASE_URL")
					if ref.Name != "sso-gatehouse" || ref.Key != "database-url" {
						t.Errorf("%s: database URL from %s/%s", d.Name, ref.Name, ref.Key)
					}
					ref = secretRef(t, d, "GATEHOUSE_REDIS_URL")
					if ref.Name != "sso-gatehouse" || ref.Key != "redis-url" {
						t.Errorf("%s: Redis URL from %s/%s", d.Name, ref.Name, ref.Key)
					}
				}
				if c := server.Spec.Template.Spec.Containers[0]; c.Lifecycle == nil || c.Lifecycle.PreStop == nil ||
					c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 5 || c.Lifecycle.PreStop.Exec != nil {
					t.Errorf("server preStop %+v, want a native sleep of 5 s (no shell in the image)", c.Lifecycle)
				}
				if worker.Spec.Template.Spec.Containers[0].Lifecycle != nil {
					t.Errorf("worker has a preStop hook; it serves no traffic")
				}
				wantEnvValue(t, server, "GATEHOUSE_SHUTDOWN_DELAY", "5s")
				if e := env(worker, "GATEHOUSE_SHUTDOWN_DELAY"); e != nil {
					t.Errorf("worker: GATEHOUSE_SHUTDOWN_DELAY = %+v; it serves no traffic", e)
				}
				wantGrace(t, server, 40)
				wantGrace(t, worker, 35)
				aff := server.Spec.Template.Spec.Affinity
				if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
					t.Errorf("server replicas are not spread over nodes: %+v", aff)
				}
				if r.all("PersistentVolumeClaim") != nil {
					t.Errorf("PVC rendered with an external database")
				}

				s := r.secret("sso-gatehouse")
				if keys := secretKeys(s); !slices.Equal(keys, []string{"database-url", "redis-url", "secret-key"}) {
					t.Errorf("Secret keys %v", keys)
				}
				wantGeneratedKey(t, s)
				if v, _ := secretValue(s, "database-url"); v != "postgres://gatehouse:s3cret@pg-rw.db.svc:5432/gatehouse?sslmode=require" {
					t.Errorf("database-url = %q", v)
				}
				if v, _ := secretValue(s, "redis-url"); v != "redis://:r3dis@redis-master.db.svc:6379/0" {
					t.Errorf("redis-url = %q", v)
				}

				pdb := r.find("PodDisruptionBudget", "sso-gatehouse").Typed.(*policyv1.PodDisruptionBudget)
				if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
					t.Errorf("PDB minAvailable %v, want 1", pdb.Spec.MinAvailable)
				}
				if !selects(pdb.Spec.Selector.MatchLabels, server) || selects(pdb.Spec.Selector.MatchLabels, worker) {
					t.Errorf("PDB selector %v must select the servers only", pdb.Spec.Selector.MatchLabels)
				}
				main := r.find("Service", "sso-gatehouse").Typed.(*corev1.Service)
				if !selects(main.Spec.Selector, server) || selects(main.Spec.Selector, worker) {
					t.Errorf("HTTP Service selector %v must select the servers only", main.Spec.Selector)
				}
				metrics := r.find("Service", "sso-gatehouse-metrics").Typed.(*corev1.Service)
				if !selects(metrics.Spec.Selector, server) || !selects(metrics.Spec.Selector, worker) {
					t.Errorf("metrics Service selector %v must select servers and workers", metrics.Spec.Selector)
				}

				sm := r.find("ServiceMonitor", "sso-gatehouse").Typed.(*serviceMonitor)
				if sm.Metadata.Labels["release"] != "kube-prometheus-stack" {
					t.Errorf("ServiceMonitor labels %v lack the extra label", sm.Metadata.Labels)
				}
				if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" ||
					sm.Spec.Endpoints[0].Interval != "30s" {
					t.Errorf("ServiceMonitor endpoints %+v", sm.Spec.Endpoints)
				}

				in := r.find("Ingress", "sso-gatehouse").Typed.(*networkingv1.Ingress)
				if in.Spec.IngressClassName == nil || *in.Spec.IngressClassName != "nginx" {
					t.Errorf("ingressClassName %v", in.Spec.IngressClassName)
				}
				if len(in.Spec.Rules) != 1 || in.Spec.Rules[0].Host != "auth.homelab.local" {
					t.Errorf("ingress rules %+v, want the externalURL host", in.Spec.Rules)
				}
				if len(in.Spec.TLS) != 1 || in.Spec.TLS[0].SecretName != "auth-tls" || !slices.Equal(in.Spec.TLS[0].Hosts, []string{"auth.homelab.local"}) {
					t.Errorf("ingress TLS %+v, want auth-tls for auth.homelab.local", in.Spec.TLS)
				}
				if in.Annotations["cert-manager.io/cluster-issuer"] != "homelab-ca" {
					t.Errorf("ingress annotations %v", in.Annotations)
				}
				for k := range in.Annotations {
					if strings.Contains(k, "auth-url") {
						t.Errorf("the auth host's own Ingress carries %s: Gatehouse cannot protect itself", k)
					}
				}
				cm := r.find("ConfigMap", "sso-gatehouse").Typed.(*corev1.ConfigMap)
				if !strings.Contains(cm.Data["gatehouse.yaml"], "log:\n  level: debug") {
					t.Errorf("inline config not rendered:\n%s", cm.Data["gatehouse.yaml"])
				}
				wantNotes(t, r, "3 server replica(s) (serve --role=server) and 2 worker replica(s)",
					"http://sso-gatehouse.auth.svc.cluster.local:9000/api/authz/nginx", "ServiceMonitor \"sso-gatehouse\"")
			},
		},
		{
			name: "existing Secrets (GitOps), one PostgreSQL replica: no chart Secret, no PDB",
			values: `
externalURL: https://auth.example.org:8443/
existingSecret: gatehouse-keys
existingSecretKey: key
database:
  existingSecret: pg-app
  existingSecretKey: uri
redis:
  existingSecret: redis-auth
  existingSecretKey: url
server:
  replicas: 1
ingress:
  enabled: true
`,
			ext: external{secrets: map[string]bool{"gatehouse-keys": true, "pg-app": true, "redis-auth": true}},
			kinds: []string{
				"ConfigMap/gatehouse", "Deployment/gatehouse", "Ingress/gatehouse", "Service/gatehouse",
				"Service/gatehouse-metrics", "ServiceAccount/gatehouse",
			},
			check: func(t *testing.T, r *rendered) {
				d := r.deployment(t, "gatehouse")
				wantReplicas(t, d, 1)
				wantArgs(t, d, "serve")
				if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
					t.Errorf("strategy %s, want RollingUpdate with PostgreSQL", d.Spec.Strategy.Type)
				}
				// Role "all" behind a Service with rolling updates: the binary would not drain
				// by itself (its default is 5 s for --role=server only), so the chart says so.
				wantEnvValue(t, d, "GATEHOUSE_SHUTDOWN_DELAY", "5s")
				wantGrace(t, d, 35)
				var keyVol *corev1.SecretVolumeSource
				for _, v := range d.Spec.Template.Spec.Volumes {
					if v.Name == "secret-key" {
						keyVol = v.Secret
					}
				}
				if keyVol == nil || keyVol.SecretName != "gatehouse-keys" || len(keyVol.Items) != 1 ||
					keyVol.Items[0].Key != "key" || keyVol.Items[0].Path != "secret-key" {
					t.Errorf("secret-key volume %+v, want gatehouse-keys/key as secret-key", keyVol)
				}
				for name, want := range map[string][2]string{
					"GATEHOUSE_DATABASE_URL":       {"pg-app", "uri"},
					"GATEHOUSE_REDIS_URL":          {"redis-auth", "url"},
					"GATEHOUSE_BOOTSTRAP_PASSWORD": {"gatehouse-keys", "bootstrap-password"},
				} {
					ref := secretRef(t, d, name)
					if ref.Name != want[0] || ref.Key != want[1] {
						t.Errorf("%s from %s/%s, want %s/%s", name, ref.Name, ref.Key, want[0], want[1])
					}
				}
				if ref := secretRef(t, d, "GATEHOUSE_BOOTSTRAP_PASSWORD"); ref.Optional == nil || !*ref.Optional {
					t.Errorf("bootstrap-password in the existing Secret must be optional")
				}
				in := r.find("Ingress", "gatehouse").Typed.(*networkingv1.Ingress)
				if in.Spec.Rules[0].Host != "auth.example.org" || len(in.Spec.TLS) != 0 {
					t.Errorf("ingress host %q (port must be stripped), tls %+v", in.Spec.Rules[0].Host, in.Spec.TLS)
				}
				wantNotes(t, r, "Read from Secret \"gatehouse-keys\" key \"key\"", "1 server replica(s) running every role")
			},
		},
		{
			name: "migration from Authentik: alias Service, explicit key, bootstrap password, digest",
			values: `
externalURL: ` + externalURL + `
secretKey: 0123456789abcdef0123456789abcdef-explicit
bootstrapPassword: correct horse battery staple
cookieDomain: .homelab.local
database:
  url: postgresql://gatehouse@pg/gatehouse
redis:
  url: redis-sentinel://:pw@sentinel:26379/mymaster
image:
  digest: sha256:` + strings.Repeat("ab", 32) + `
service:
  aliases: [ak-outpost-authentik-embedded-outpost]
commonLabels:
  team: platform
server:
  pdb:
    enabled: false
`,
			kinds: []string{
				"ConfigMap/gatehouse", "Deployment/gatehouse", "Secret/gatehouse", "Service/ak-outpost-authentik-embedded-outpost",
				"Service/gatehouse", "Service/gatehouse-metrics", "ServiceAccount/gatehouse",
			},
			check: func(t *testing.T, r *rendered) {
				d := r.deployment(t, "gatehouse")
				wantReplicas(t, d, 2)
				s := r.secret("gatehouse")
				if v, _ := secretValue(s, "secret-key"); v != "0123456789abcdef0123456789abcdef-explicit" {
					t.Errorf("secret-key = %q, want the explicit value", v)
				}
				if v, _ := secretValue(s, "redis-url"); v != "redis-sentinel://:pw@sentinel:26379/mymaster" {
					t.Errorf("redis-url = %q", v)
				}
				if v, _ := secretValue(s, "bootstrap-password"); v != "correct horse battery staple" {
					t.Errorf("bootstrap-password = %q", v)
				}
				if ref := secretRef(t, d, "GATEHOUSE_BOOTSTRAP_PASSWORD"); ref.Name != "gatehouse" || ref.Optional != nil {
					t.Errorf("bootstrap password ref %+v", ref)
				}
				if img := d.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/gatehouse-sso/gatehouse@sha256:"+strings.Repeat("ab", 32) {
					t.Errorf("image %q, want the digest", img)
				}
				wantServicePort(t, r, "ak-outpost-authentik-embedded-outpost", "http", 9000)
				for _, o := range r.Objects {
					if o.Labels["team"] != "platform" {
						t.Errorf("%s/%s lacks commonLabels", o.Kind, o.Name)
					}
				}
				if d.Spec.Template.Labels["team"] != "platform" {
					t.Errorf("pod template lacks commonLabels")
				}
			},
		},
		{
			name: "scheduled backups on the workers: RWX volume, encrypted, servers untouched",
			values: `
externalURL: ` + externalURL + `
database: {url: 'postgres://gatehouse@pg/gatehouse'}
worker:
  enabled: true
  replicas: 2
backup:
  enabled: true
  interval: 12h
  keep: 14
  maxAge: 720h
  passphraseSecret: {name: gatehouse-backup, key: pass}
  persistence:
    accessModes: [ReadWriteMany]
    storageClass: nfs
`,
			ext: external{secrets: map[string]bool{"gatehouse-backup": true}},
			kinds: []string{
				"ConfigMap/gatehouse", "Deployment/gatehouse", "Deployment/gatehouse-worker", "PersistentVolumeClaim/gatehouse-backups",
				"PodDisruptionBudget/gatehouse", "Secret/gatehouse", "Service/gatehouse", "Service/gatehouse-metrics", "ServiceAccount/gatehouse",
			},
			check: func(t *testing.T, r *rendered) {
				server := r.deployment(t, "gatehouse")
				worker := r.deployment(t, "gatehouse-worker")
				wantEnvValue(t, worker, "GATEHOUSE_WORKER_BACKUP_DIR", "/backups")
				wantEnvValue(t, worker, "GATEHOUSE_WORKER_BACKUP_INTERVAL", "12h")
				wantEnvValue(t, worker, "GATEHOUSE_WORKER_BACKUP_KEEP", "14")
				wantEnvValue(t, worker, "GATEHOUSE_WORKER_BACKUP_MAX_AGE", "720h")
				wantEnvValue(t, worker, "GATEHOUSE_WORKER_BACKUP_PASSPHRASE_FILE", "/etc/gatehouse/backup/passphrase")
				if v := volume(t, worker, "backups"); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "gatehouse-backups" {
					t.Errorf("worker backups volume %+v, want the claim gatehouse-backups", v.VolumeSource)
				}
				if v := volume(t, worker, "backup-passphrase"); v.Secret == nil || v.Secret.SecretName != "gatehouse-backup" ||
					len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "pass" || v.Secret.Items[0].Path != "passphrase" {
					t.Errorf("worker passphrase volume %+v", v.VolumeSource)
				}
				if !mounted(worker, "backups", "/backups") || !mounted(worker, "backup-passphrase", "/etc/gatehouse/backup") {
					t.Errorf("worker mounts %+v", worker.Spec.Template.Spec.Containers[0].VolumeMounts)
				}
				// Servers do not run jobs: no volume (a RWO claim could not follow them) and no settings.
				for _, e := range server.Spec.Template.Spec.Containers[0].Env {
					if strings.HasPrefix(e.Name, "GATEHOUSE_WORKER_BACKUP_") {
						t.Errorf("server has %s", e.Name)
					}
				}
				for _, v := range server.Spec.Template.Spec.Volumes {
					if v.Name == "backups" || v.Name == "backup-passphrase" {
						t.Errorf("server mounts %s", v.Name)
					}
				}
				pvc := r.find("PersistentVolumeClaim", "gatehouse-backups").Typed.(*corev1.PersistentVolumeClaim)
				if pvc.Annotations["helm.sh/resource-policy"] != "keep" || pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "nfs" ||
					!slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}) {
					t.Errorf("backups PVC %+v %+v", pvc.Annotations, pvc.Spec)
				}
				wantNotes(t, r, `Every 12h (and whenever a process starts leading) into /backups on PVC "gatehouse-backups", by the worker pod`,
					`encrypted with the passphrase in Secret "gatehouse-backup"`)
			},
		},
		{
			name: "scheduled backups with SQLite: the single pod runs them",
			values: `
externalURL: ` + externalURL + `
backup:
  enabled: true
  persistence: {existingClaim: nas-backups}
`,
			ext: external{claims: map[string]bool{"nas-backups": true}},
			kinds: []string{
				"ConfigMap/gatehouse", "Deployment/gatehouse", "PersistentVolumeClaim/gatehouse-data",
				"Secret/gatehouse", "Service/gatehouse", "Service/gatehouse-metrics", "ServiceAccount/gatehouse",
			},
			check: func(t *testing.T, r *rendered) {
				d := r.deployment(t, "gatehouse")
				wantEnvValue(t, d, "GATEHOUSE_WORKER_BACKUP_DIR", "/backups")
				wantEnvValue(t, d, "GATEHOUSE_WORKER_BACKUP_INTERVAL", "24h")
				wantEnvValue(t, d, "GATEHOUSE_WORKER_BACKUP_KEEP", "7")
				for _, name := range []string{"GATEHOUSE_WORKER_BACKUP_MAX_AGE", "GATEHOUSE_WORKER_BACKUP_PASSPHRASE_FILE"} {
					if e := env(d, name); e != nil {
						t.Errorf("%s = %+v without a value for it", name, e)
					}
				}
				if v := volume(t, d, "backups"); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "nas-backups" {
					t.Errorf("backups volume %+v, want the existing claim", v.VolumeSource)
				}
				wantNotes(t, r, "NOT encrypted")
			},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.values, renderOptions{release: tc.release})
			var got []string
			for _, o := range r.Objects {
				got = append(got, o.Kind+"/"+o.Name)
			}
			sort.Strings(got)
			want := slices.Clone(tc.kinds)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("rendered objects\n got %v\nwant %v", got, want)
			}
			checkInvariants(t, r, tc.ext)
			tc.check(t, r)
		})
	}
}

func TestChartRejectsBadValues(t *testing.T) {
	cases := []struct {
		name, values string
		want         []string // all must appear in the error
	}{
		{"no externalURL", `{}`, []string{"externalURL is required"}},
		{"externalURL without scheme", `externalURL: auth.homelab.local`, []string{"externalURL"}},
		{"externalURL with a query", `externalURL: "https://auth.homelab.local/?x=1"`, []string{"without query or fragment"}},
		{"short secret key", "externalURL: " + externalURL + "\nsecretKey: tooshort", []string{"at least 32 bytes"}},
		{"secret key and existing Secret", "externalURL: " + externalURL + "\nsecretKey: " + strings.Repeat("k", 40) + "\nexistingSecret: keys", []string{"not both"}},
		{"database url and existing Secret", "externalURL: " + externalURL + "\ndatabase: {url: 'postgres://x/y', existingSecret: pg}", []string{"not both"}},
		{"MySQL URL", "externalURL: " + externalURL + "\ndatabase: {url: 'mysql://x/y'}", []string{"database", "url"}},
		{"misspelt nested key", "externalURL: " + externalURL + "\nserver: {replica: 3}", []string{"replica"}},
		{"misspelt top-level key", "externalUrl: " + externalURL, []string{"externalUrl"}},
		{"cookie domain that does not cover the auth host", "externalURL: " + externalURL + "\ncookieDomain: example.org", []string{"cookieDomain", "auth.homelab.local"}},
		{"cookie domain that is only a suffix of the host", "externalURL: https://auth.nothomelab.local\ncookieDomain: homelab.local", []string{"cookieDomain"}},
		{"replicas as a string", "externalURL: " + externalURL + "\nserver: {replicas: 'three'}", []string{"replicas"}},
		{"grace period shorter than drain + in-flight", "externalURL: " + externalURL + "\ndatabase: {url: 'postgres://a/b'}\nserver: {terminationGracePeriodSeconds: 30}",
			[]string{"server.terminationGracePeriodSeconds (30) must be at least 35"}},
		{"preStop sleep not added to the grace period", "externalURL: " + externalURL + "\ndatabase: {url: 'postgres://a/b'}\nserver: {preStopSleepSeconds: 10}",
			[]string{"server.terminationGracePeriodSeconds (35) must be at least 45"}},
		{"longer drain without a longer grace period", "externalURL: " + externalURL + "\ndatabase: {url: 'postgres://a/b'}\nserver: {shutdownDelaySeconds: 15}",
			[]string{"must be at least 45", "shutdown delay (15 s)"}},
		{"worker grace period below the in-flight timeout", "externalURL: " + externalURL + "\ndatabase: {url: 'postgres://a/b'}\nworker: {enabled: true, terminationGracePeriodSeconds: 10}",
			[]string{"worker.terminationGracePeriodSeconds (10) must be at least 30"}},
		{"backups on a RWO volume with two workers", "externalURL: " + externalURL + "\ndatabase: {url: 'postgres://a/b'}\nworker: {enabled: true, replicas: 2}\nbackup: {enabled: true}",
			[]string{"2 pods run the background jobs", "ReadWriteMany"}},
		{"backups on a RWO volume with two servers and no worker", "externalURL: " + externalURL + "\ndatabase: {url: 'postgres://a/b'}\nbackup: {enabled: true}",
			[]string{"2 pods run the background jobs"}},
		{"backups without retention", "externalURL: " + externalURL + "\nbackup: {enabled: true, keep: 0}", []string{"set backup.keep or backup.maxAge"}},
		{"misspelt backup key", "externalURL: " + externalURL + "\nbackup: {enabled: true, retention: 3}", []string{"retention"}},
		{"negative drain delay", "externalURL: " + externalURL + "\nserver: {shutdownDelaySeconds: -1}", []string{"shutdownDelaySeconds"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := render(t, tc.values, renderOptions{})
			if err == nil {
				t.Fatalf("rendered without error: %s", r.summary())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestConfigAndSecretChangesRollPods(t *testing.T) {
	base := "externalURL: " + externalURL + "\ndatabase: {url: 'postgres://a/b'}\n"
	ann := func(values string) map[string]string {
		t.Helper()
		return r0(t, values).deployment(t, "gatehouse").Spec.Template.Annotations
	}
	a := ann(base)
	b := ann(base)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("two renders of the same values annotate pods differently (pods would roll on every sync): %v vs %v", a, b)
	}
	c := ann(base + "config: {log: {level: debug}}\n")
	if c["checksum/config"] == a["checksum/config"] {
		t.Errorf("a config change does not change checksum/config")
	}
	if c["checksum/secret"] != a["checksum/secret"] {
		t.Errorf("a config change changes checksum/secret")
	}
	d := ann("externalURL: " + externalURL + "\ndatabase: {url: 'postgres://a/c'}\n")
	if d["checksum/secret"] == a["checksum/secret"] {
		t.Errorf("a database URL change does not change checksum/secret")
	}
}

func r0(t *testing.T, values string) *rendered { return mustRender(t, values, renderOptions{}) }

// --- helpers ---

func wantReplicas(t *testing.T, d *appsv1.Deployment, n int32) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != n {
		t.Errorf("%s: replicas %v, want %d", d.Name, d.Spec.Replicas, n)
	}
}

func wantArgs(t *testing.T, d *appsv1.Deployment, args ...string) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	if len(c.Command) != 0 {
		t.Errorf("%s: command %v overrides the image's ENTRYPOINT", d.Name, c.Command)
	}
	if !slices.Equal(c.Args, args) {
		t.Errorf("%s: args %q, want %q", d.Name, c.Args, args)
	}
}

func env(d *appsv1.Deployment, name string) *corev1.EnvVar {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return &e
		}
	}
	return nil
}

func wantEnvValue(t *testing.T, d *appsv1.Deployment, name, want string) {
	t.Helper()
	e := env(d, name)
	if e == nil || e.Value != want || e.ValueFrom != nil {
		t.Errorf("%s: env %s = %+v, want %q", d.Name, name, e, want)
	}
}

func secretRef(t *testing.T, d *appsv1.Deployment, name string) *corev1.SecretKeySelector {
	t.Helper()
	e := env(d, name)
	if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Fatalf("%s: env %s = %+v, want a secretKeyRef", d.Name, name, e)
	}
	return e.ValueFrom.SecretKeyRef
}

func dataVolume(t *testing.T, d *appsv1.Deployment) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "data" {
			return v
		}
	}
	t.Fatalf("%s: no data volume", d.Name)
	return corev1.Volume{}
}

func wantQuantity(t *testing.T, what string, got resource.Quantity, want string) {
	t.Helper()
	if got.Cmp(resource.MustParse(want)) != 0 {
		t.Errorf("%s = %s, want %s", what, got.String(), want)
	}
}

func secretKeys(s *corev1.Secret) []string {
	if s == nil {
		return nil
	}
	var keys []string
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// wantGeneratedKey checks a key generated by the chart: 64 alphanumerics (≥ 32 bytes).
func wantGeneratedKey(t *testing.T, s *corev1.Secret) string {
	t.Helper()
	v, ok := secretValue(s, "secret-key")
	if !ok || len(v) != 64 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
		t.Errorf("secret-key %q: want 64 random alphanumerics", v)
	}
	return v
}

func wantServicePort(t *testing.T, r *rendered, service, port string, number int32) {
	t.Helper()
	o := r.find("Service", service)
	if o == nil {
		t.Errorf("no Service %s", service)
		return
	}
	for _, p := range o.Typed.(*corev1.Service).Spec.Ports {
		if p.Name == port && p.Port == number && p.TargetPort.StrVal == port {
			return
		}
	}
	t.Errorf("Service %s has no port %s=%d → %s: %+v", service, port, number, port, o.Typed.(*corev1.Service).Spec.Ports)
}

func selects(selector map[string]string, d *appsv1.Deployment) bool {
	return labels.SelectorFromSet(selector).Matches(labels.Set(d.Spec.Template.Labels))
}

func volume(t *testing.T, d *appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Errorf("%s: no volume %s", d.Name, name)
	return corev1.Volume{}
}

func mounted(d *appsv1.Deployment, volume, path string) bool {
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.Name == volume && m.MountPath == path {
			return true
		}
	}
	return false
}

func wantGrace(t *testing.T, d *appsv1.Deployment, seconds int64) {
	t.Helper()
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != seconds {
		t.Errorf("%s: terminationGracePeriodSeconds = %v, want %d", d.Name, g, seconds)
	}
}

func wantNoNotes(t *testing.T, r *rendered, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(r.Notes, p) {
			t.Errorf("NOTES.txt contains %q:\n%s", p, r.Notes)
		}
	}
}

func wantNotes(t *testing.T, r *rendered, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.Notes, p) {
			t.Errorf("NOTES.txt lacks %q:\n%s", p, r.Notes)
		}
	}
}
