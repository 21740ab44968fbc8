package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-sso/gatehouse/internal/config"
	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// recoveryKeyCommand prints a one-time emergency sign-in URL.
func (e *env) recoveryKeyCommand() *cobra.Command {
	var username string
	var ttl string
	c := &cobra.Command{
		Use:   "recovery-key",
		Short: "Print a one-time sign-in URL for a user who lost their password or second factor",
		Long: "Prints a URL that signs the user in once, without password or second factor, and also\n" +
			"clears a sign-in lockout. It expires after --ttl (at most 24h) and is audit-logged.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := config.ParseDuration(ttl)
			if err != nil {
				return fmt.Errorf("--ttl: %w", err)
			}
			a, err := e.openApp(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			u, err := a.Directory.User(cmd.Context(), username)
			if err != nil {
				return err
			}
			secret, expires, err := a.Recovery.Issue(cmd.Context(), u.ID, "cli", d)
			if err != nil {
				return err
			}
			a.Audit.Record(cmd.Context(), model.AuditEvent{Action: "recovery.created", Subject: u.Username, Detail: map[string]string{"expires": expires.Format(time.RFC3339)}})
			link := a.Config.ExternalURL + "/recover?token=" + url.QueryEscape(secret)
			fmt.Fprintf(e.stdout, "One-time sign-in URL for %s (valid until %s):\n%s\n", u.Username, expires.Local().Format(time.RFC1123), link)
			return nil
		},
	}
	c.Flags().StringVar(&username, "user", "", "the user to sign in (required)")
	c.Flags().StringVar(&ttl, "ttl", "30m", "how long the URL stays valid (at most 24h)")
	_ = c.MarkFlagRequired("user")
	return c
}

// eventsCommand queries the audit record.
func (e *env) eventsCommand() *cobra.Command {
	var f model.AuditFilter
	var since, until string
	var asJSON bool
	c := &cobra.Command{
		Use:   "events",
		Short: "Query the audit log (newest first)",
		Example: "  gatehouse events --user alice --since 24h\n" +
			"  gatehouse events --type login. --limit 20\n" +
			"  gatehouse events --type user.created --json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var err error
			if f.Since, err = parseWhen(since, now); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if f.Until, err = parseWhen(until, now); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			a, err := e.openApp(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			events, err := a.Store.ListEvents(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				for _, ev := range events {
					if err := enc.Encode(ev); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tACTION\tACTOR\tSUBJECT\tIP\tOUTCOME\tDETAIL")
			for _, ev := range events {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Time.Local().Format(time.RFC3339), ev.Action, ev.Actor, ev.Subject, ev.ClientIP, ev.Outcome, formatDetail(ev.Detail))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&f.User, "user", "", "events by or about this username")
	c.Flags().StringVar(&f.Action, "type", "", "event type, exact (login.success) or a prefix ending in a dot (login.)")
	c.Flags().StringVar(&since, "since", "", "from this time: RFC 3339 or a duration ago (24h, 7d)")
	c.Flags().StringVar(&until, "until", "", "before this time: RFC 3339 or a duration ago")
	c.Flags().IntVar(&f.Limit, "limit", 100, "at most this many events")
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	return c
}

func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := config.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return now.Add(-d), nil
}

func formatDetail(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + d[k]
	}
	return strings.Join(parts, " ")
}
