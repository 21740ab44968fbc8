package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gatehouse-sso/gatehouse/internal/app"
	"github.com/gatehouse-sso/gatehouse/internal/directory"
	"github.com/gatehouse-sso/gatehouse/internal/model"
)

func (e *env) userCommand() *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "Manage users"}

	var email, name string
	var groups []string
	var pwStdin bool
	create := &cobra.Command{
		Use:   "create USERNAME",
		Short: "Create a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := directory.NewUser{Username: args[0], Email: email, DisplayName: name, Groups: groups}
			if pwStdin {
				pw, err := e.readSecret()
				if err != nil {
					return err
				}
				in.Password = pw
			}
			a, err := e.openApp(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			u, err := a.Directory.CreateUser(cmd.Context(), in)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "created user %s (%s)\n", u.Username, u.ID)
			return nil
		},
	}
	create.Flags().StringVar(&email, "email", "", "email address")
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringArrayVar(&groups, "group", nil, "group to join (repeatable; the group must exist)")
	create.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from standard input")

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			users, err := a.Directory.Users(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tEMAIL\tNAME\tGROUPS\tSTATUS")
			for _, u := range users {
				gs, err := a.Directory.GroupNames(cmd.Context(), u.ID)
				if err != nil {
					return err
				}
				status := "active"
				if u.Disabled {
					status = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Username, u.Email, u.DisplayName, strings.Join(gs, ","), status)
			}
			return tw.Flush()
		}),
	}

	setPassword := &cobra.Command{
		Use:   "set-password USERNAME",
		Short: "Set a user's password (ends all their sessions)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !pwStdin {
				return fmt.Errorf("pass the new password on standard input with --password-stdin")
			}
			pw, err := e.readSecret()
			if err != nil {
				return err
			}
			a, err := e.openApp(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.Directory.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "password of %s changed; their sessions ended\n", args[0])
			return nil
		},
	}
	setPassword.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from standard input")

	simple := func(use, short, done string, fn func(a *app.App, cmd *cobra.Command, user string) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " USERNAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: e.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
				if err := fn(a, cmd, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, done+"\n", args[0])
				return nil
			}),
		}
	}
	c.AddCommand(create, list, setPassword,
		simple("disable", "Disable a user and end their sessions", "disabled %s", func(a *app.App, cmd *cobra.Command, u string) error {
			return a.Directory.SetDisabled(cmd.Context(), u, true)
		}),
		simple("enable", "Enable a disabled user", "enabled %s", func(a *app.App, cmd *cobra.Command, u string) error {
			return a.Directory.SetDisabled(cmd.Context(), u, false)
		}),
		simple("delete", "Delete a user", "deleted %s", func(a *app.App, cmd *cobra.Command, u string) error {
			return a.Directory.DeleteUser(cmd.Context(), u)
		}),
		simple("unlock", "Clear a sign-in lockout caused by failed attempts", "unlocked %s", func(a *app.App, cmd *cobra.Command, u string) error {
			if err := a.Regulator.Unlock(cmd.Context(), u); err != nil {
				return err
			}
			a.Audit.Record(cmd.Context(), model.AuditEvent{Action: "user.unlocked", Subject: u})
			return nil
		}),
	)
	return c
}

func (e *env) groupCommand() *cobra.Command {
	c := &cobra.Command{Use: "group", Short: "Manage groups"}
	var description string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a group", Args: cobra.ExactArgs(1),
		RunE: e.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			if _, err := a.Directory.CreateGroup(cmd.Context(), args[0], description); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "created group %s\n", args[0])
			return nil
		}),
	}
	create.Flags().StringVar(&description, "description", "", "what the group is for")

	list := &cobra.Command{
		Use: "list", Short: "List groups with their members", Args: cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			groups, err := a.Directory.Groups(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tMEMBERS\tDESCRIPTION")
			for _, g := range groups {
				members, err := a.Directory.Members(cmd.Context(), g.Name)
				if err != nil {
					return err
				}
				names := make([]string, len(members))
				for i, m := range members {
					names[i] = m.Username
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Name, strings.Join(names, ","), g.Description)
			}
			return tw.Flush()
		}),
	}

	member := func(use, short, done string, add bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " GROUP USERNAME", Short: short, Args: cobra.ExactArgs(2),
			RunE: e.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
				change := a.Directory.RemoveMember
				if add {
					change = a.Directory.AddMember
				}
				if err := change(cmd.Context(), args[0], args[1]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, done+"\n", args[1], args[0])
				return nil
			}),
		}
	}
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a group", Args: cobra.ExactArgs(1),
		RunE: e.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			if err := a.Directory.DeleteGroup(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted group %s\n", args[0])
			return nil
		}),
	}
	c.AddCommand(create, list, del,
		member("add-member", "Add a user to a group", "added %s to %s", true),
		member("remove-member", "Remove a user from a group", "removed %s from %s", false))
	return c
}
