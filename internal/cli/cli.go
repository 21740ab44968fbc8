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

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse-sso/gatehouse/internal/app"
	"github.com/gatehouse-sso/gatehouse/internal/config"
)

// Version is set at build time.
var Version = "dev"

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	configPath     string
	logLevel       string
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := e.rootCommand()
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
	root.AddCommand(e.serveCommand(), e.configCommand(), e.userCommand(), e.groupCommand(), e.healthcheckCommand())
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
	if format == "text" {
		return slog.New(slog.NewTextHandler(e.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(e.stderr, opts))
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
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			log := e.logger(cfg)
			a, err := app.Open(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer a.Close()
			return a.Serve(cmd.Context(), app.ServeOptions{Out: e.stdout})
		},
	}
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
