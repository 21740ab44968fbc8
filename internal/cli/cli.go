// Package cli is the gatehouse command line: serve, directory management
// and operator tools. It loads the configuration and hands it to app.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse-sso/gatehouse/internal/app"
	"github.com/gatehouse-sso/gatehouse/internal/audit"
	"github.com/gatehouse-sso/gatehouse/internal/config"
)

// Version is set at build time.
var Version = "dev"

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	configPath     string
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := e.rootCommand()
	root.SetArgs(args)
	// Changes made from the command line are audited as the operator's.
	ctx := audit.WithActor(context.Background(), "cli", "")
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

func (e *env) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Single sign-on for self-hosted clusters: identity provider, forward-auth gate and user directory",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.PersistentFlags().StringVarP(&e.configPath, "config", "c", os.Getenv("GATEHOUSE_CONFIG"), "configuration file (env GATEHOUSE_CONFIG)")
	root.AddCommand(e.serveCommand(), e.configCommand(), e.userCommand(), e.groupCommand(), e.healthcheckCommand(),
		e.recoveryKeyCommand(), e.eventsCommand())
	root.AddCommand(e.tokenCommand())
	root.AddCommand(e.appCommand())
	root.AddCommand(e.migrateCommand())
	root.AddCommand(e.backupCommand(), e.restoreCommand())
	return root
}

// loadConfig reads the file and environment and validates the result.
func (e *env) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(e.configPath, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// logger writes JSON when stderr is not a terminal (containers, systemd)
// and readable text when a person is watching.
func (e *env) logger(cfg *config.Config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.Log.Format
	if format == "" || format == "auto" {
		format = "json"
		if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	var l *slog.Logger
	if format == "text" {
		l = slog.New(slog.NewTextHandler(e.stderr, opts))
	} else {
		l = slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	// Libraries that log through slog's default logger (the OIDC protocol
	// library) share our format and level.
	slog.SetDefault(l)
	return l
}

// openApp loads the configuration and opens the store and services. The
// CLI logs only warnings so its own output stays readable.
func (e *env) openApp(ctx context.Context) (*app.App, error) {
	cfg, err := e.loadConfig()
	if err != nil {
		return nil, err
	}
	if cfg.Log.Level == "info" {
		cfg.Log.Level = "warn"
	}
	return app.Open(ctx, cfg, e.logger(cfg))
}

func (e *env) serveCommand() *cobra.Command {
	var roleFlag string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the server",
		Long: "Runs Gatehouse. --role=all (the default) runs everything in one process; in a cluster,\n" +
			"run N replicas with --role=server behind a Service and one or two with --role=worker\n" +
			"(leader-elected background jobs; health endpoints only).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			role, err := app.ParseRole(roleFlag)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			log := e.logger(cfg).With("role", string(role))
			a, err := app.Open(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer a.Close()
			return a.Serve(cmd.Context(), app.ServeOptions{
				Out:        e.stdout,
				Role:       role,
				DrainDelay: app.DrainDelay(cfg.IsSet("shutdown_delay"), time.Duration(cfg.ShutdownDelay), role),
			})
		},
	}
	role := os.Getenv("GATEHOUSE_ROLE")
	if role == "" {
		role = string(app.RoleAll)
	}
	c.Flags().StringVar(&roleFlag, "role", role, "all, server or worker (env GATEHOUSE_ROLE)")
	return c
}

func (e *env) configCommand() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	c.AddCommand(&cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a configuration file and the GATEHOUSE_* environment; report every problem",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 1 {
				e.configPath = args[0]
			}
			if _, err := e.loadConfig(); err != nil {
				return err
			}
			name := e.configPath
			if name == "" {
				name = "defaults and environment"
			}
			fmt.Fprintf(e.stdout, "%s: valid\n", name)
			return nil
		},
	})
	return c
}

// readSecret reads a password from standard input: the whole input less one
// trailing newline, so `echo pw | gatehouse ...` and files both work.
func (e *env) readSecret() (string, error) {
	b, err := io.ReadAll(io.LimitReader(e.stdin, 4096))
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", errors.New("no password on standard input")
	}
	return s, nil
}

// withApp adapts a command that needs the services: it opens the app
// (store, migrations) for the command and closes it afterwards.
func (e *env) withApp(run func(cmd *cobra.Command, args []string, a *app.App) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a, err := e.openApp(cmd.Context())
		if err != nil {
			return err
		}
		defer a.Close()
		return run(cmd, args, a)
	}
}
