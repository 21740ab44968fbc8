package cli

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckCommand lets container images probe the server without curl.
func (e *env) healthcheckCommand() *cobra.Command {
	var url string
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the local server reports ready (for container health checks)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				cfg, err := e.loadConfig()
				if err != nil {
					return err
				}
				host, port, err := net.SplitHostPort(cfg.Listen)
				if err != nil {
					return fmt.Errorf("listen %q: %w", cfg.Listen, err)
				}
				if host == "" || host == "0.0.0.0" || host == "::" {
					host = "127.0.0.1"
				}
				url = "http://" + net.JoinHostPort(host, port) + "/healthz/ready"
			}
			client := &http.Client{Timeout: 5 * time.Second}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s answered %s", url, resp.Status)
			}
			fmt.Fprintln(e.stdout, "ready")
			return nil
		},
	}
	c.Flags().StringVar(&url, "url", "", "readiness URL (default: derived from listen)")
	return c
}
