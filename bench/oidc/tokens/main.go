// Command tokens signs a user in through Gatehouse's form and runs the
// authorization code flow n times for a confidential client, printing one
// refresh token per line: the seeds of the refresh-token benchmark (each
// wrk connection rotates its own token family).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func main() {
	base := flag.String("base", "", "Gatehouse external URL")
	user := flag.String("user", "", "username")
	pass := flag.String("pass", "", "password")
	clientID := flag.String("client", "", "client id")
	secret := flag.String("secret", "", "client secret")
	redirect := flag.String("redirect", "", "registered redirect URI")
	n := flag.Int("n", 1, "how many refresh tokens")
	flag.Parse()

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := must(c.Get(*base + "/login"))
	m := csrfRE.FindSubmatch(body(resp))
	if m == nil {
		log.Fatal("no CSRF token on the sign-in page")
	}
	resp = must(c.PostForm(*base+"/login", url.Values{"csrf_token": {string(m[1])}, "username": {*user}, "password": {*pass}}))
	if resp.StatusCode != http.StatusFound {
		log.Fatalf("sign-in: %d", resp.StatusCode)
	}
	body(resp)
	for range *n {
		next := *base + "/oauth2/authorize?" + url.Values{"client_id": {*clientID}, "redirect_uri": {*redirect}, "response_type": {"code"},
			"scope": {"openid profile groups offline_access"}, "state": {"bench"}}.Encode()
		code := ""
		for range 5 {
			resp := must(c.Get(next))
			body(resp)
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil || loc.String() == "" {
				log.Fatalf("authorize stopped at %s: %d", next, resp.StatusCode)
			}
			if code = loc.Query().Get("code"); code != "" && strings.HasPrefix(loc.String(), *redirect) {
				break
			}
			next = loc.String()
		}
		req, _ := http.NewRequest(http.MethodPost, *base+"/oauth2/token", strings.NewReader(url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {*redirect}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(*clientID), url.QueryEscape(*secret))
		resp := must(http.DefaultClient.Do(req))
		var tr struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.Unmarshal(body(resp), &tr); err != nil || tr.RefreshToken == "" {
			log.Fatalf("token exchange: %d %v", resp.StatusCode, err)
		}
		fmt.Println(tr.RefreshToken)
	}
}

func must(resp *http.Response, err error) *http.Response {
	if err != nil {
		log.Fatal(err)
	}
	return resp
}

func body(resp *http.Response) []byte {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}
