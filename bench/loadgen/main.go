// Command loadgen supports bench/run.sh: it signs a user in to get a gate
// cookie, and it is the load generator when wrk is not installed.
//
//	loadgen signin -base http://127.0.0.1:9000 -user alice -pass PW -rd http://sonarr.homelab.local/
//	loadgen load -url URL -H 'Name: value' -c 32 -d 5s [-n 1000000] [-random-cookie]
//
// load prints one line: "rps=<req/s> p50=<ms> p99=<ms> n=<requests> non2xx=<count>".
// It only talks to 127.0.0.1.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen signin|load ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "signin":
		err = signin(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func localOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" {
		return fmt.Errorf("refusing non-local target %s", raw)
	}
	return nil
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signin posts the login form and then visits /gate/start; it prints the
// gate cookie value.
func signin(args []string) error {
	fs := flag.NewFlagSet("signin", flag.ExitOnError)
	base := fs.String("base", "", "Gatehouse base URL (127.0.0.1)")
	user := fs.String("user", "", "username")
	pass := fs.String("pass", "", "password")
	rd := fs.String("rd", "", "app URL to start for")
	_ = fs.Parse(args)
	if err := localOnly(*base); err != nil {
		return err
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(*base + "/login")
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(page)
	if m == nil {
		return errors.New("no csrf token on the login page")
	}
	resp, err = c.PostForm(*base+"/login", url.Values{"csrf_token": {string(m[1])}, "username": {*user}, "password": {*pass}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return fmt.Errorf("sign-in answered %d", resp.StatusCode)
	}
	resp, err = c.Get(*base + "/gate/start?rd=" + url.QueryEscape(*rd))
	if err != nil {
		return err
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "gatehouse_gate" {
			fmt.Println(ck.Value)
			return nil
		}
	}
	return fmt.Errorf("no gate cookie (start answered %d)", resp.StatusCode)
}

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	target := fs.String("url", "", "URL (127.0.0.1)")
	conns := fs.Int("c", 32, "connections")
	dur := fs.Duration("d", 5*time.Second, "duration (ignored with -n)")
	total := fs.Int64("n", 0, "stop after this many requests")
	random := fs.Bool("random-cookie", false, "send a random, well-formed but forged gate cookie and path each time")
	var hdr headers
	fs.Var(&hdr, "H", "header 'Name: value' (repeatable)")
	_ = fs.Parse(args)
	if err := localOnly(*target); err != nil {
		return err
	}
	base, err := http.NewRequest(http.MethodGet, *target, nil)
	if err != nil {
		return err
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ":")
		if strings.EqualFold(k, "Host") {
			base.Host = strings.TrimSpace(v)
			continue
		}
		base.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *conns, DialContext: (&net.Dialer{}).DialContext}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var n, non2xx atomic.Int64
	deadline := time.Now().Add(*dur)
	lat := make([][]time.Duration, *conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *conns {
		wg.Go(func() {
			buf := make([]byte, 48)
			for {
				if *total > 0 {
					if n.Add(1) > *total {
						return
					}
				} else if time.Now().After(deadline) {
					return
				}
				req := base.Clone(base.Context())
				if *random {
					_, _ = rand.Read(buf)
					req.Header.Set("Cookie", "gatehouse_gate="+base64.RawURLEncoding.EncodeToString(buf))
					req.Header.Set("X-Original-URL", "http://sonarr.homelab.local/"+base64.RawURLEncoding.EncodeToString(buf[:9]))
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					non2xx.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = append(lat[i], time.Since(t0))
				if *total == 0 {
					n.Add(1)
				}
				if resp.StatusCode >= 300 {
					non2xx.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000
	}
	fmt.Printf("rps=%.0f p50=%.3f p99=%.3f n=%d non2xx=%d\n", float64(len(all))/elapsed.Seconds(), pct(0.50), pct(0.99), len(all), non2xx.Load())
	return nil
}
