package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse-sso/gatehouse/internal/store/sqlstore"
)

// migrateCommand lets operators migrate the schema as a separate step
// (a Kubernetes Job or Helm hook) instead of at server start. Servers
// still migrate at start; both take the same PostgreSQL advisory lock, so
// the two ways can be mixed safely.
func (e *env) migrateCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Apply or inspect database schema migrations",
	}
	c.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Apply pending migrations (under an advisory lock on PostgreSQL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			opts := sqlstore.Options{MaxOpenConns: 2, Logger: e.logger(cfg)}
			if err := sqlstore.Migrate(cmd.Context(), cfg.DatabaseURLOrDefault(), opts); err != nil {
				return err
			}
			return e.printMigrationStatus(cmd, cfg.DatabaseURLOrDefault())
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List applied and pending migrations; exit status 1 when some are pending",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			return e.printMigrationStatus(cmd, cfg.DatabaseURLOrDefault())
		},
	})
	return c
}

func (e *env) printMigrationStatus(cmd *cobra.Command, databaseURL string) error {
	s, err := sqlstore.Open(cmd.Context(), databaseURL, sqlstore.Options{MaxOpenConns: 1, SkipMigrations: true})
	if err != nil {
		return err
	}
	defer s.Close()
	applied, pending, err := s.MigrationStatus(cmd.Context())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "database: %s\napplied:  %s\npending:  %s\n", s.Dialect(), joinInts(applied), joinInts(pending))
	if len(pending) > 0 {
		return fmt.Errorf("%d migration(s) pending; run `gatehouse migrate up`", len(pending))
	}
	return nil
}

func joinInts(vs []int) string {
	if len(vs) == 0 {
		return "none"
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%04d", v)
	}
	return strings.Join(parts, " ")
}
