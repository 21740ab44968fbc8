package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-sso/gatehouse/internal/app"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

func (e *env) tokenCommand() *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "Manage API tokens and app passwords for forward-auth apps"}

	var user, name, kind, expires string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API token (Bearer) or an app password (Basic) and print it once",
		Long: `Create a machine credential for a user. The secret is printed once and
never stored (only a keyed hash is kept).

  --kind api            send as "Authorization: Bearer <token>" (default)
  --kind app-password   send as HTTP Basic auth with the user's username

Apps accept them only with allow_bearer / allow_basic in their forward_auth.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" || name == "" {
				return errors.New("--user and --name are required")
			}
			k := model.TokenKind(kind)
			if k != model.TokenAPI && k != model.TokenAppPassword {
				return fmt.Errorf("--kind must be api or app-password, not %q", kind)
			}
			ttl, err := parseExpiry(expires)
			if err != nil {
				return err
			}
			a, err := e.openApp(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			u, err := a.Directory.User(cmd.Context(), user)
			if err != nil {
				return err
			}
			secret, t, err := a.APITokens().Create(cmd.Context(), u.ID, name, k, ttl)
			if err != nil {
				return err
			}
			a.Audit.Record(cmd.Context(), model.AuditEvent{Action: "token.issued", Subject: u.Username,
				Detail: map[string]string{"kind": string(k), "name": t.Name, "id": t.ID}})
			fmt.Fprintf(e.stderr, "created %s %s (id %s) for %s; it is shown once:\n", k, t.Name, t.ID, u.Username)
			fmt.Fprintln(e.stdout, secret)
			return nil
		},
	}
	create.Flags().StringVar(&user, "user", "", "owner's username (required)")
	create.Flags().StringVar(&name, "name", "", "what the credential is for, e.g. grafana-datasource (required)")
	create.Flags().StringVar(&kind, "kind", string(model.TokenAPI), "api or app-password")
	create.Flags().StringVar(&expires, "expires", "", "lifetime such as 90d or 12h (default: no expiry)")

	var listUser string
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			uid := ""
			if listUser != "" {
				u, err := a.Directory.User(cmd.Context(), listUser)
				if err != nil {
					return err
				}
				uid = u.ID
			}
			ts, err := a.APITokens().List(cmd.Context(), uid)
			if err != nil {
				return err
			}
			names := map[string]string{}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSER\tNAME\tKIND\tCREATED\tEXPIRES")
			for _, t := range ts {
				if _, ok := names[t.UserID]; !ok {
					names[t.UserID] = t.UserID
					if u, err := a.Directory.GetUser(cmd.Context(), t.UserID); err == nil {
						names[t.UserID] = u.Username
					}
				}
				exp := "never"
				if !t.ExpiresAt.IsZero() {
					exp = t.ExpiresAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, names[t.UserID], t.Name, t.Kind, t.CreatedAt.Format(time.RFC3339), exp)
			}
			return tw.Flush()
		}),
	}
	list.Flags().StringVar(&listUser, "user", "", "only this user's tokens")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token (running servers stop accepting it within their cache TTL, 30s)",
		Args:  cobra.ExactArgs(1),
		RunE: e.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			t, err := a.APITokens().Revoke(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			owner := t.UserID
			if u, err := a.Directory.GetUser(cmd.Context(), t.UserID); err == nil {
				owner = u.Username
			}
			a.Audit.Record(cmd.Context(), model.AuditEvent{Action: "token.revoked", Subject: owner,
				Detail: map[string]string{"kind": string(t.Kind), "name": t.Name, "id": t.ID}})
			fmt.Fprintf(e.stdout, "revoked %s (%s)\n", t.ID, t.Name)
			return nil
		}),
	}
	c.AddCommand(create, list, revoke)
	return c
}

// parseExpiry reads "90d", "12h", "30m" (Go durations plus days).
func parseExpiry(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("--expires %q: want a positive number of days like 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: want a lifetime like 90d or 12h", s)
	}
	return d, nil
}
