package charttest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// The Docker image cannot be built here, so these tests build the binary with the script
// the Dockerfile's build stage runs and check what the image and the chart rely on.

const buildVersion = "charttest-0.0.0"

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildOut  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// gatehouseBinary builds the binary once per test run with ../build-static.sh.
func gatehouseBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH: cannot build the binary")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not on PATH: cannot run build-static.sh")
	}
	if testing.Short() {
		t.Skip("-short: not building the binary")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "gatehouse-build-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "gatehouse")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "../build-static.sh", buildBin)
		cmd.Env = append(os.Environ(), "VERSION="+buildVersion)
		out, err := cmd.CombinedOutput()
		buildOut = string(out)
		if err != nil {
			buildErr = fmt.Errorf("build-static.sh: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func TestBuildStaticBinary(t *testing.T) {
	bin := gatehouseBinary(t)
	if !strings.Contains(buildOut, "static") {
		t.Errorf("build-static.sh did not report a static binary:\n%s", buildOut)
	}

	info, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, info)
	}
	// -ldflags is not recorded with -trimpath; --version below proves -X, `file` proves -s.
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath=true"} {
		if !bytes.Contains(info, []byte(want)) {
			t.Errorf("go version -m lacks %q:\n%s", want, info)
		}
	}
	if !bytes.Contains(info, []byte("go1.27.3")) {
		t.Errorf("not built with go1.27.3:\n%s", info)
	}
	if file, err := exec.LookPath("file"); err == nil {
		out, _ := exec.Command(file, "-b", bin).CombinedOutput()
		if !bytes.Contains(out, []byte("statically linked")) || !bytes.Contains(out, []byte(", stripped")) {
			t.Errorf("file says %q, want statically linked and stripped (-s -w)", out)
		}
	}
	if ldd, err := exec.LookPath("ldd"); err == nil {
		out, _ := exec.Command(ldd, bin).CombinedOutput()
		if !bytes.Contains(out, []byte("not a dynamic executable")) && !bytes.Contains(out, []byte("statically linked")) {
			t.Errorf("ldd says %q, want not dynamic", out)
		}
	}

	help := run(t, bin, nil, "--help")
	for _, cmd := range []string{"serve", "healthcheck", "config"} {
		if !strings.Contains(help, cmd) {
			t.Errorf("--help does not list %q (the image and the chart use it):\n%s", cmd, help)
		}
	}
	if v := run(t, bin, nil, "--version"); !strings.Contains(v, buildVersion) {
		t.Errorf("--version = %q, want %q stamped by -ldflags -X", v, buildVersion)
	}
	run(t, bin, nil, "healthcheck", "--help")
}

// TestBinaryAcceptsChartArgs checks that every argument list the chart renders parses.
func TestBinaryAcceptsChartArgs(t *testing.T) {
	bin := gatehouseBinary(t)
	serveHelp := run(t, bin, nil, "serve", "--help")
	r := mustRender(t, `
externalURL: https://auth.homelab.local
database: {url: 'postgres://gatehouse@pg/gatehouse'}
worker: {enabled: true}
`, renderOptions{})
	for _, name := range []string{"gatehouse", "gatehouse-worker"} {
		args := r.deployment(t, name).Spec.Template.Spec.Containers[0].Args
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if strings.Contains(strings.Join(args, " "), "--role") && !strings.Contains(serveHelp, "--role") {
				t.Errorf("`serve --help` does not document --role; worker.enabled=true renders %q", args)
			}
			run(t, bin, nil, append(args, "--help")...)
		})
	}
}

// TestBinaryAcceptsChartEnvironment runs `gatehouse config validate` with exactly the
// environment and files the chart gives the container, for each storage shape.
func TestBinaryAcceptsChartEnvironment(t *testing.T) {
	bin := gatehouseBinary(t)
	for _, tc := range []struct{ name, values string }{
		{"sqlite", "externalURL: https://auth.homelab.local\ncookieDomain: homelab.local\ntrustedProxies: [10.42.0.0/16]\n"},
		{"postgres", "externalURL: https://auth.homelab.local\ndatabase: {url: 'postgres://gatehouse:pw@127.0.0.1:5432/gatehouse'}\nredis: {url: 'redis://127.0.0.1:6379/0'}\nbootstrapPassword: a-long-bootstrap-password\nconfig: {log: {level: warn, format: json}}\n"},
		{"postgres, worker, backups", "externalURL: https://auth.homelab.local\ndatabase: {url: 'postgres://gatehouse:pw@127.0.0.1:5432/gatehouse'}\nworker: {enabled: true}\nbackup: {enabled: true, interval: 1d, maxAge: 30d, passphraseSecret: {name: gh-backup}}\n"},
		{"sqlite, backups", "externalURL: https://auth.homelab.local\nbackup: {enabled: true, keep: 3}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.values, renderOptions{})
			for _, o := range r.all("Deployment") {
				envv := containerEnv(t, r, o.Typed.(*appsv1.Deployment), t.TempDir(), nil)
				out := run(t, bin, envv, "config", "validate")
				if !strings.Contains(out, "valid") {
					t.Errorf("%s: config validate printed %q", o.Name, out)
				}
			}
		})
	}
}

// TestServeWithChartEnvironment starts the SQLite pod's command with the pod's environment,
// waits for `gatehouse healthcheck` (the image's HEALTHCHECK) to pass, probes the paths the
// chart's probes use and /metrics on the metrics port, and stops it with SIGTERM as the
// kubelet does.
func TestServeWithChartEnvironment(t *testing.T) {
	bin := gatehouseBinary(t)
	r := mustRender(t, "externalURL: http://auth.localtest\n", renderOptions{})
	d := r.deployment(t, "gatehouse")
	p := startPod(t, bin, r, d, nil, nil)
	p.wantProbes(t)
	p.wantMetrics(t)

	// Role "all" has no drain delay: the process exits as soon as it is idle.
	took := p.stop(t)
	if took > 5*time.Second {
		t.Errorf("role all took %v to stop; it has no drain delay", took)
	}
}

// TestServeRolesWithChartEnvironment runs the production shape, `serve --role=server` and
// `serve --role=worker`, with the environment the chart gives those pods. The database is a
// SQLite file standing in for PostgreSQL (the roles do not depend on the dialect).
func TestServeRolesWithChartEnvironment(t *testing.T) {
	bin := gatehouseBinary(t)
	r := mustRender(t, `
externalURL: http://auth.localtest
database: {url: 'postgres://gatehouse:pw@127.0.0.1:5432/gatehouse'}
worker: {enabled: true}
`, renderOptions{})

	t.Run("worker serves health and metrics only", func(t *testing.T) {
		d := r.deployment(t, "gatehouse-worker")
		wantArgs(t, d, "serve", "--role=worker")
		p := startPod(t, bin, r, d, map[string]string{"GATEHOUSE_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "gh.db")}, nil)
		p.wantProbes(t)
		p.wantMetrics(t)
		status, body := p.get(t, "/healthz/worker")
		if status != http.StatusOK || !strings.Contains(body, "leader true") {
			t.Errorf("GET /healthz/worker: %d %q, want 200 with the lease holder leading", status, body)
		}
		// Only the health endpoints: no pages, no OIDC, no forward auth on a worker.
		for _, path := range []string{"/login", "/.well-known/openid-configuration", "/api/authz/nginx"} {
			if status, _ := p.get(t, path); status != http.StatusNotFound {
				t.Errorf("worker GET %s: %d, want 404", path, status)
			}
		}
		if took := p.stop(t); took > 5*time.Second {
			t.Errorf("worker took %v to stop; it has no drain delay", took)
		}
	})

	t.Run("server drains for its shutdown delay, then stops within the grace period", func(t *testing.T) {
		d := r.deployment(t, "gatehouse")
		wantArgs(t, d, "serve", "--role=server")
		delay := drainDelay(t, "server", d.Spec.Template.Spec.Containers[0])
		if delay != 5*time.Second {
			t.Fatalf("drain delay %v, want the 5 s default", delay)
		}
		p := startPod(t, bin, r, d, map[string]string{"GATEHOUSE_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "gh.db")}, nil)
		p.wantProbes(t)
		p.wantMetrics(t)
		if status, _ := p.get(t, "/login"); status != http.StatusOK {
			t.Errorf("server GET /login: %d, want 200", status)
		}

		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// During the drain: still answering, but not ready, so the endpoint is removed.
		var notReady time.Duration
		for time.Since(start) < delay-time.Second {
			status, _ := p.get(t, "/healthz/ready")
			if status == http.StatusServiceUnavailable && notReady == 0 {
				notReady = time.Since(start)
			}
			if live, _ := p.get(t, "/healthz/live"); live != http.StatusOK {
				t.Errorf("%v after SIGTERM: /healthz/live answered %d while draining", time.Since(start).Round(time.Millisecond), live)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if notReady == 0 || notReady > time.Second {
			t.Errorf("readiness did not turn 503 within 1 s of SIGTERM (after %v)", notReady)
		}
		took := p.wait(t, start)
		if took < delay-500*time.Millisecond {
			t.Errorf("stopped %v after SIGTERM, before the %v drain delay", took, delay)
		}
	})
}

// pod is a running `gatehouse` process started with a pod's arguments and environment.
type pod struct {
	cmd         *exec.Cmd
	env         []string
	httpAddr    string
	metricsAddr string
	grace       time.Duration
	probes      []*corev1.Probe
	logs        *lockedBuffer
	exited      chan error
	done        bool
	client      *http.Client
}

// startPod starts d's container command with the pod's environment (see podEnvironment) on
// free local ports, and waits until `gatehouse healthcheck` passes.
func startPod(t *testing.T, bin string, r *rendered, d *appsv1.Deployment, overrides map[string]string,
	ext map[string]map[string]string) *pod {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	p := &pod{
		httpAddr:    freeAddr(t),
		metricsAddr: freeAddr(t),
		grace:       time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second,
		probes:      []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe},
		logs:        &lockedBuffer{},
		exited:      make(chan error, 1),
		client:      &http.Client{Timeout: 5 * time.Second},
	}
	o := map[string]string{"GATEHOUSE_LISTEN": p.httpAddr, "GATEHOUSE_METRICS_LISTEN": p.metricsAddr}
	for k, v := range overrides {
		o[k] = v
	}
	p.env = podEnvironment(t, r, d, t.TempDir(), o, ext)
	p.cmd = exec.Command(bin, c.Args...)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.done {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", strings.Join(c.Args, " "), p.logs.String())
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		hc := exec.Command(bin, "healthcheck")
		hc.Env = p.env
		out, err := hc.CombinedOutput()
		if err == nil {
			return p
		}
		select {
		case err := <-p.exited:
			p.done = true
			t.Fatalf("%s exited before it was ready: %v", strings.Join(c.Args, " "), err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never passed: %v\n%s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// get fetches path from the main listener; the status is 0 when nothing answered.
func (p *pod) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := p.client.Get("http://" + p.httpAddr + path)
	if err != nil {
		t.Logf("GET %s: %v", path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b)
}

// wantProbes checks that every path the chart's probes use answers 200.
func (p *pod) wantProbes(t *testing.T) {
	t.Helper()
	for _, probe := range p.probes {
		if status, body := p.get(t, probe.HTTPGet.Path); status != http.StatusOK {
			t.Errorf("GET %s: %d %q, want 200", probe.HTTPGet.Path, status, body)
		}
	}
}

// wantMetrics checks /metrics on GATEHOUSE_METRICS_LISTEN (the chart's metrics port) and
// that the main listener does not serve it.
func (p *pod) wantMetrics(t *testing.T) {
	t.Helper()
	resp, err := p.client.Get("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		t.Errorf("GET /metrics on the metrics port: %v", err)
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("gatehouse_")) {
		t.Errorf("GET /metrics: %s, %d bytes, want 200 with gatehouse_* metrics", resp.Status, len(b))
	}
	if status, _ := p.get(t, "/metrics"); status == http.StatusOK {
		t.Errorf("/metrics is served on the public port too")
	}
}

// stop sends SIGTERM, as the kubelet does, and returns how long the process took to exit.
func (p *pod) stop(t *testing.T) time.Duration {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return p.wait(t, time.Now())
}

// wait waits for the exit that a SIGTERM sent at start causes: cleanly, and well within
// terminationGracePeriodSeconds, or the kubelet would SIGKILL the process.
func (p *pod) wait(t *testing.T, start time.Time) time.Duration {
	t.Helper()
	select {
	case err := <-p.exited:
		p.done = true
		took := time.Since(start)
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		t.Logf("stopped %v after SIGTERM (grace period %v)", took.Round(time.Millisecond), p.grace)
		return took
	case <-time.After(p.grace):
		t.Errorf("still running %v after SIGTERM: the kubelet would SIGKILL it", p.grace)
		return p.grace
	}
}

// lockedBuffer collects a process's output from two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// containerEnv turns the pod's env into a process environment: values as rendered, Secret
// references resolved from the rendered Secret (or a stand-in for external Secrets), the
// mounted files written under dir with their paths rewritten, and overrides last.
func containerEnv(t *testing.T, r *rendered, d *appsv1.Deployment, dir string, overrides map[string]string) []string {
	t.Helper()
	return podEnvironment(t, r, d, dir, overrides, nil)
}

// podEnvironment is containerEnv with the content of external Secrets (name → key → value)
// that the pod reads but the chart does not render. Paths under a mount are rewritten in
// the environment and inside mounted ConfigMap files alike, so a config file that names
// a file of another mount (client_secret_file) finds it.
func podEnvironment(t *testing.T, r *rendered, d *appsv1.Deployment, dir string, overrides map[string]string,
	ext map[string]map[string]string) []string {
	t.Helper()
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	mountDirs := map[string]string{} // pod path → host path
	for _, m := range c.VolumeMounts {
		mountDirs[m.MountPath] = filepath.Join(dir, strings.ReplaceAll(strings.Trim(m.MountPath, "/"), "/", "_"))
	}
	// Longest mount first, so that /a/b wins over /a.
	mounts := slices.SortedFunc(maps.Keys(mountDirs), func(a, b string) int { return len(b) - len(a) })
	rewrite := func(v string) string {
		for _, mp := range mounts {
			host := mountDirs[mp]
			if v == mp {
				return host
			}
			if strings.HasPrefix(v, mp+"/") {
				return host + v[len(mp):]
			}
		}
		return v
	}
	var pairs []string
	for _, mp := range mounts {
		pairs = append(pairs, mp+"/", mountDirs[mp]+"/")
	}
	rewriteAll := strings.NewReplacer(pairs...).Replace // one pass: a rewritten path is not rewritten again
	secretData := func(name, key string) (string, bool) {
		if v, ok := secretValue(r.secret(name), key); ok {
			return v, true
		}
		v, ok := ext[name][key]
		return v, ok
	}
	for _, m := range c.VolumeMounts {
		host := mountDirs[m.MountPath]
		if err := os.MkdirAll(host, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			switch {
			case v.ConfigMap != nil:
				cm := r.find("ConfigMap", v.ConfigMap.Name).Typed.(*corev1.ConfigMap)
				for k, val := range cm.Data {
					writeFile(t, filepath.Join(host, k), rewriteAll(val))
				}
			case v.Secret != nil:
				name := v.Secret.SecretName
				if len(v.Secret.Items) == 0 { // every key of the Secret, as files named after the keys
					keys := secretKeys(r.secret(name))
					if keys == nil {
						keys = slices.Sorted(maps.Keys(ext[name]))
					}
					if len(keys) == 0 {
						t.Fatalf("volume %s: no content for Secret %s", v.Name, name)
					}
					for _, k := range keys {
						val, _ := secretData(name, k)
						writeFile(t, filepath.Join(host, k), val)
					}
				}
				for _, it := range v.Secret.Items {
					val, ok := secretData(name, it.Key)
					if !ok {
						val = "external-secret-key-for-tests-0123456789abcdef"
					}
					writeFile(t, filepath.Join(host, it.Path), val)
				}
			}
		}
	}
	envv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + mountDirs["/tmp"]}
	for _, e := range c.Env {
		val := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			var ok bool
			if val, ok = secretData(ref.Name, ref.Key); !ok {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				t.Fatalf("env %s: no value for %s/%s", e.Name, ref.Name, ref.Key)
			}
		case e.ValueFrom.ResourceFieldRef != nil:
			val = fmt.Sprint(c.Resources.Limits.Memory().Value())
		default:
			t.Fatalf("env %s: unsupported valueFrom %+v", e.Name, e.ValueFrom)
		}
		if o, ok := overrides[e.Name]; ok {
			val = o
		}
		envv = append(envv, e.Name+"="+rewrite(val))
	}
	return envv
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// run executes the binary and fails the test unless it exits 0. A nil env keeps a minimal
// environment without any GATEHOUSE_* variable of the caller.
func run(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	if env == nil {
		env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
