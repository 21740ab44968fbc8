package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse-sso/gatehouse/internal/audit"
	"github.com/gatehouse-sso/gatehouse/internal/backup"
	"github.com/gatehouse-sso/gatehouse/internal/config"
	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store/sqlstore"
)

// Environment variables that carry the backup passphrase when
// --passphrase-file is not given.
const (
	envBackupPassphrase     = "GATEHOUSE_BACKUP_PASSPHRASE"
	envBackupPassphraseFile = "GATEHOUSE_BACKUP_PASSPHRASE_FILE"
	minPassphraseLen        = 12
)

func (e *env) backupCommand() *cobra.Command {
	var output, dir, passFile string
	var keep backup.Retention
	c := &cobra.Command{
		Use:   "backup (--output FILE | --dir DIR [--keep N] [--max-age D])",
		Short: "Write a consistent snapshot of all state to FILE (- for standard output), while the server runs",
		Long: `Write a consistent snapshot of the whole database (SQLite or PostgreSQL) to FILE.
The server may keep running. The backup restores into either database with
"gatehouse restore". With --passphrase-file (or GATEHOUSE_BACKUP_PASSPHRASE) it is
encrypted. Keep the secret key (data_dir/secret_key or GATEHOUSE_SECRET_KEY) with your
backups: signing keys and TOTP seeds in them are sealed with it.

With --dir instead of --output, the file is named gatehouse-YYYYMMDDTHHMMSSZ.backup
(UTC) in DIR, and older backups there are pruned by --keep (count) and --max-age, as
the worker's scheduled backups are: convenient for a CronJob or a systemd timer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (output == "") == (dir == "") {
				return errors.New("give exactly one of --output FILE (- for standard output) and --dir DIR")
			}
			if dir == "" && (keep.Count != 0 || keep.MaxAge != 0) {
				return errors.New("--keep and --max-age apply to --dir only")
			}
			if keep.Count < 0 || keep.MaxAge < 0 {
				return errors.New("--keep and --max-age must not be negative")
			}
			ctx := cmd.Context()
			pass, err := backupPassphrase(passFile)
			if err != nil {
				return err
			}
			if pass != "" && len([]rune(pass)) < minPassphraseLen {
				return fmt.Errorf("the backup passphrase is too short: use at least %d characters", minPassphraseLen)
			}
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			// A backup reads as the database is: it must not migrate it
			// (a server of another version may be running on it).
			st, err := e.openStore(ctx, cfg, true)
			if err != nil {
				return err
			}
			defer st.Close()

			opts := backup.WriteOptions{Passphrase: pass, Generator: "gatehouse " + Version}
			report := e.stdout
			var m *backup.Manifest
			var pruned []string
			switch {
			case dir != "":
				var res *backup.Scheduled
				res, err = backup.RunScheduled(ctx, st, dir, keep, time.Now(), opts)
				if res != nil {
					m, pruned, output = res.Manifest, res.Pruned, res.Path
					if err != nil {
						// Written, but not all old backups could be removed.
						fmt.Fprintf(e.stderr, "warning: %v\n", err)
						err = nil
					}
				}
			case output == "-":
				if f, ok := e.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					return errors.New("refusing to write a backup to a terminal: redirect standard output or use --output FILE")
				}
				report = e.stderr // standard output carries the backup
				bw := bufio.NewWriterSize(e.stdout, 256<<10)
				if m, err = backup.Write(ctx, st, bw, opts); err == nil {
					err = bw.Flush()
				}
			default:
				m, err = backup.WriteFile(ctx, st, output, opts)
			}
			rec := audit.New(st, audit.Options{Logger: e.quietLogger(cfg)})
			if err != nil {
				rec.Record(ctx, model.AuditEvent{Action: "backup.created", Outcome: audit.Failure, Detail: map[string]string{"error": err.Error()}})
				return err
			}
			rec.Record(ctx, model.AuditEvent{Action: "backup.created", Detail: manifestDetail(m, map[string]string{"output": output})})

			where := output
			if output == "-" {
				where = "standard output"
			}
			fmt.Fprintf(report, "backup written to %s: %d rows in %d tables, %s, schema version %d, %s\n",
				where, m.Rows(), len(m.Tables), m.Dialect, m.SchemaVersion, humanBytes(m.Size))
			for _, p := range pruned {
				fmt.Fprintf(report, "pruned %s\n", p)
			}
			if m.Encrypted {
				fmt.Fprintln(report, "encrypted: keep the passphrase; without it the backup cannot be read")
			}
			fmt.Fprintln(report, "keep the secret key with the backup: sealed values in it (signing keys, TOTP seeds) need it")
			return nil
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "file to write (- for standard output); written atomically, mode 0600")
	c.Flags().StringVar(&dir, "dir", "", "write gatehouse-<UTC time>.backup into this directory and prune old ones")
	c.Flags().IntVar(&keep.Count, "keep", 0, "with --dir: keep at most this many backups (0: no limit)")
	c.Flags().DurationVar(&keep.MaxAge, "max-age", 0, "with --dir: remove backups older than this, e.g. 720h (0: no limit)")
	c.Flags().StringVar(&passFile, "passphrase-file", "", "encrypt with the passphrase in this file (env "+envBackupPassphrase+" or "+envBackupPassphraseFile+")")
	return c
}

func (e *env) restoreCommand() *cobra.Command {
	var passFile string
	var force, dryRun bool
	c := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup (- for standard input) into the configured database",
		Long: `Restore a backup written by "gatehouse backup" into the configured database,
SQLite or PostgreSQL, whichever the backup came from. The whole file is verified
first (checksum, format and schema version); the database is migrated, then filled
in one transaction, so a failure changes nothing. A database that already holds
data is refused unless --force, which replaces all of it. Stop the server first.
The restored server needs the secret key the backup was taken with.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			pass, err := backupPassphrase(passFile)
			if err != nil {
				return err
			}
			in, closeIn, err := e.openInput(args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			opts := backup.RestoreOptions{Passphrase: pass, Force: force}

			// Check the file before opening the database, which migrates
			// it: a bad file, or a wrong passphrase, then changes nothing
			// at all. Restore checks it again as it reads it.
			m, err := backup.Verify(in, opts)
			if err != nil {
				if errors.Is(err, backup.ErrPassphraseRequired) {
					err = fmt.Errorf("%w: pass --passphrase-file or set %s", err, envBackupPassphrase)
				}
				return fmt.Errorf("nothing was restored: %w", err)
			}
			if dryRun {
				e.printManifest(m, "backup verified (nothing restored, --dry-run)")
				return nil
			}
			if _, err := in.Seek(0, io.SeekStart); err != nil {
				return err
			}
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			st, err := e.openStore(ctx, cfg, false)
			if err != nil {
				return err
			}
			defer st.Close()
			if m, err = backup.Restore(ctx, st, in, opts); err != nil {
				return fmt.Errorf("nothing was restored: %w", err)
			}
			// Recorded in the restored database, after the restore: the
			// record of the restore survives it.
			audit.New(st, audit.Options{Logger: e.quietLogger(cfg)}).Record(ctx, model.AuditEvent{
				Action: "backup.restored",
				Detail: manifestDetail(m, map[string]string{"input": args[0], "force": strconv.FormatBool(force)}),
			})
			e.printManifest(m, "restored into "+st.Dialect())
			fmt.Fprintln(e.stdout, "start the server with the secret key the backup was taken with")
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "replace everything in a database that already holds data")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only verify the file (checksum, format, passphrase); touch no database")
	c.Flags().StringVar(&passFile, "passphrase-file", "", "passphrase of an encrypted backup (env "+envBackupPassphrase+" or "+envBackupPassphraseFile+")")
	return c
}

// openStore opens the configured database for the backup commands only,
// not the whole app: app.Open would create a bootstrap admin or reconcile
// declared users and groups, which a restore target must not get.
func (e *env) openStore(ctx context.Context, cfg *config.Config, skipMigrations bool) (*sqlstore.Store, error) {
	st, err := sqlstore.Open(ctx, cfg.DatabaseURLOrDefault(), sqlstore.Options{
		MaxOpenConns:     cfg.Database.MaxOpenConns,
		StatementTimeout: time.Duration(cfg.Database.StatementTimeout),
		SkipMigrations:   skipMigrations,
		Logger:           e.quietLogger(cfg),
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return st, nil
}

// quietLogger logs warnings and errors only, so the commands' own output
// stays readable.
func (e *env) quietLogger(cfg *config.Config) *slog.Logger {
	c := *cfg
	if c.Log.Level == "" || c.Log.Level == "info" || c.Log.Level == "debug" {
		c.Log.Level = "warn"
	}
	return e.logger(&c)
}

// openInput opens the backup to restore. Standard input ("-") is copied
// to a temporary file first: the backup is read more than once.
func (e *env) openInput(name string) (io.ReadSeeker, func(), error) {
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, err
		}
		return f, func() { _ = f.Close() }, nil
	}
	f, err := os.CreateTemp("", "gatehouse-restore-*.backup")
	if err != nil {
		return nil, nil, fmt.Errorf("copy standard input: %w", err)
	}
	cleanup := func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	if _, err := io.Copy(f, e.stdin); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("copy standard input: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, nil, err
	}
	return f, cleanup, nil
}

func (e *env) printManifest(m *backup.Manifest, what string) {
	fmt.Fprintf(e.stdout, "%s: backup taken %s from %s (schema version %d", what,
		m.CreatedAt.Format(time.RFC3339), m.Dialect, m.SchemaVersion)
	if m.Generator != "" {
		fmt.Fprintf(e.stdout, ", %s", m.Generator)
	}
	if m.Encrypted {
		fmt.Fprint(e.stdout, ", encrypted")
	}
	fmt.Fprintln(e.stdout, ")")
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TABLE\tROWS\t")
	// By name, for people; the manifest's own order is the restore order.
	tables := slices.Clone(m.Tables)
	slices.SortFunc(tables, func(a, b backup.TableCount) int { return strings.Compare(a.Name, b.Name) })
	for _, t := range tables {
		fmt.Fprintf(tw, "%s\t%d\t\n", t.Name, t.Rows)
	}
	fmt.Fprintf(tw, "total\t%d\t\n", m.Rows())
	_ = tw.Flush()
}

// backupPassphrase reads the passphrase from file, else from the
// environment; "" means none. A trailing newline (echo, editors) is not
// part of it.
func backupPassphrase(file string) (string, error) {
	source := "--passphrase-file"
	if file == "" {
		if v, ok := os.LookupEnv(envBackupPassphrase); ok {
			if v == "" {
				return "", fmt.Errorf("%s is set but empty", envBackupPassphrase)
			}
			return v, nil
		}
		file, source = os.Getenv(envBackupPassphraseFile), envBackupPassphraseFile
		if file == "" {
			return "", nil
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read passphrase (%s): %w", source, err)
	}
	pass := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pass == "" {
		return "", fmt.Errorf("the passphrase file %s is empty", file)
	}
	return pass, nil
}

func manifestDetail(m *backup.Manifest, extra map[string]string) map[string]string {
	d := map[string]string{
		"rows":           strconv.FormatInt(m.Rows(), 10),
		"tables":         strconv.Itoa(len(m.Tables)),
		"schema_version": strconv.Itoa(m.SchemaVersion),
		"dialect":        m.Dialect,
		"encrypted":      strconv.FormatBool(m.Encrypted),
		"taken_at":       m.CreatedAt.Format(time.RFC3339),
		"sha256":         m.SHA256,
	}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
