package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gatehouse-sso/gatehouse/internal/app"

	"github.com/gatehouse-sso/gatehouse/internal/config"
)

// appCommand is `gatehouse app`: the declared apps and their OIDC clients.
func (e *env) appCommand() *cobra.Command {
	c := &cobra.Command{Use: "app", Short: "List apps and manage their OIDC client secrets"}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the apps of the configuration with their OIDC clients",
		Args:  cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			if err := a.ReconcileOIDCClients(cmd.Context()); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SLUG\tNAME\tCLIENT ID\tTYPE\tSECRET\tALLOW GROUPS")
			for _, app := range a.Config.Apps {
				clientID, kind, secret := "-", "-", "-"
				if o := app.OIDC; o != nil {
					clientID, kind = o.ClientID, "confidential"
					stored, err := a.Store.GetOIDCClient(cmd.Context(), o.ClientID)
					switch {
					case err != nil:
						return err
					case o.Public:
						kind, secret = "public", "none (PKCE)"
					case stored.SecretFromConfig:
						secret = "from config"
					case stored.SecretHash != "":
						secret = "rotated"
					default:
						secret = "NOT SET"
					}
				}
				groups := strings.Join(app.AllowGroups, ",")
				if groups == "" {
					groups = "(everyone)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", app.Slug, app.Name, clientID, kind, secret, groups)
			}
			return tw.Flush()
		}),
	}

	rotate := &cobra.Command{
		Use:   "rotate-secret SLUG",
		Short: "Give the app's OIDC client a new random secret, printed once",
		Long: "Generates a new client secret, stores only its keyed hash, and prints the secret once.\n" +
			"The old secret stops working at once. Apps whose secret is set in the configuration\n" +
			"file (client_secret or client_secret_file) are changed there instead.",
		Args: cobra.ExactArgs(1),
		RunE: e.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			app, err := findApp(a.Config, args[0])
			if err != nil {
				return err
			}
			o := app.OIDC
			switch {
			case o == nil:
				return fmt.Errorf("app %q has no oidc section", app.Slug)
			case o.Public:
				return fmt.Errorf("app %q is a public client: it has no secret", app.Slug)
			case o.ClientSecret != "":
				return fmt.Errorf("app %q takes its secret from the configuration file; change it there", app.Slug)
			}
			if err := a.ReconcileOIDCClients(cmd.Context()); err != nil {
				return err
			}
			secret, err := a.RotateOIDCSecret(cmd.Context(), o.ClientID)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "New client secret for %s (client_id %s); it is shown only once:\n%s\n", app.Slug, o.ClientID, secret)
			return nil
		}),
	}
	c.AddCommand(list, rotate)
	return c
}

func findApp(cfg *config.Config, slug string) (config.App, error) {
	for _, app := range cfg.Apps {
		if app.Slug == slug {
			return app, nil
		}
	}
	return config.App{}, errors.New("no app " + slug + " in the configuration")
}
