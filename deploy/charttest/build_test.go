package charttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
				t.Skipf("the binary has no `serve --role` yet; worker.enabled=true renders %q (the default chart renders plain `serve`)", args)
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.values, renderOptions{})
			envv := containerEnv(t, r, r.deployment(t, "gatehouse"), t.TempDir(), nil)
			out := run(t, bin, envv, "config", "validate")
			if !strings.Contains(out, "valid") {
				t.Errorf("config validate printed %q", out)
			}
		})
	}
}

// TestServeWithChartEnvironment starts the SQLite pod's command with the pod's environment,
// waits for `gatehouse healthcheck` (the image's HEALTHCHECK) to pass, probes the paths the
// chart's probes use, and stops it with SIGTERM as the kubelet does.
func TestServeWithChartEnvironment(t *testing.T) {
	bin := gatehouseBinary(t)
	r := mustRender(t, "externalURL: http://auth.localtest\n", renderOptions{})
	d := r.deployment(t, "gatehouse")
	httpAddr, metricsAddr := freeAddr(t), freeAddr(t)
	envv := containerEnv(t, r, d, t.TempDir(), map[string]string{
		"GATEHOUSE_LISTEN":         httpAddr,
		"GATEHOUSE_METRICS_LISTEN": metricsAddr,
	})

	var logs bytes.Buffer
	cmd := exec.Command(bin, d.Spec.Template.Spec.Containers[0].Args...)
	cmd.Env = envv
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("server output:\n%s", logs.String())
		}
	}()

	deadline := time.Now().Add(60 * time.Second)
	for {
		hc := exec.Command(bin, "healthcheck")
		hc.Env = envv
		out, err := hc.CombinedOutput()
		if err == nil {
			break
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("server exited before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never passed: %v\n%s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	c := d.Spec.Template.Spec.Containers[0]
	for _, probe := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		path := probe.HTTPGet.Path
		resp, err := client.Get("http://" + httpAddr + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s, want 200", path, resp.Status)
		}
	}
	t.Run("metrics", func(t *testing.T) {
		resp, err := client.Get("http://" + metricsAddr + "/metrics")
		if errors.Is(err, syscall.ECONNREFUSED) {
			t.Skipf("nothing listens on GATEHOUSE_METRICS_LISTEN yet; the chart's metrics Service and ServiceMonitor expect /metrics there")
		}
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /metrics: %s", resp.Status)
		}
	})

	// The kubelet's SIGTERM: the process must exit by itself, cleanly, well within
	// terminationGracePeriodSeconds.
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		t.Logf("stopped %v after SIGTERM (grace period %v)", time.Since(start).Round(time.Millisecond), grace)
	case <-time.After(grace):
		t.Errorf("still running %v after SIGTERM: the kubelet would SIGKILL it", grace)
	}
}

// containerEnv turns the pod's env into a process environment: values as rendered, Secret
// references resolved from the rendered Secret (or a stand-in for external Secrets), the
// mounted files written under dir with their paths rewritten, and overrides last.
func containerEnv(t *testing.T, r *rendered, d *appsv1.Deployment, dir string, overrides map[string]string) []string {
	t.Helper()
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	mountDirs := map[string]string{} // pod path → host path
	for _, m := range c.VolumeMounts {
		host := filepath.Join(dir, strings.ReplaceAll(strings.Trim(m.MountPath, "/"), "/", "_"))
		if err := os.MkdirAll(host, 0o700); err != nil {
			t.Fatal(err)
		}
		mountDirs[m.MountPath] = host
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			switch {
			case v.ConfigMap != nil:
				cm := r.find("ConfigMap", v.ConfigMap.Name).Typed.(*corev1.ConfigMap)
				for k, val := range cm.Data {
					writeFile(t, filepath.Join(host, k), val)
				}
			case v.Secret != nil:
				s := r.secret(v.Secret.SecretName)
				for _, it := range v.Secret.Items {
					val, ok := secretValue(s, it.Key)
					if !ok {
						val = "external-secret-key-for-tests-0123456789abcdef"
					}
					writeFile(t, filepath.Join(host, it.Path), val)
				}
			}
		}
	}
	rewrite := func(v string) string {
		for pod, host := range mountDirs {
			if v == pod {
				return host
			}
			if strings.HasPrefix(v, pod+"/") {
				return host + v[len(pod):]
			}
		}
		return v
	}
	envv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + mountDirs["/tmp"]}
	for _, e := range c.Env {
		val := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			var ok bool
			if val, ok = secretValue(r.secret(ref.Name), ref.Key); !ok {
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
