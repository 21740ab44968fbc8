// Command bare is the baseline of the OIDC benchmark: a net/http handler
// that answers every request with a fixed JSON body of the given size from
// memory, the best a discovery or JWKS endpoint can do on this machine.
package main

import (
	"flag"
	"log"
	"net/http"
	"strings"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18091", "address")
	size := flag.Int("size", 1500, "body size in bytes")
	flag.Parse()
	body := []byte(`{"pad":"` + strings.Repeat("x", max(*size-10, 0)) + `"}`)
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	})))
}
