package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Scheduled backups are files named gatehouse-YYYYMMDDTHHMMSSZ.backup in
// one directory. The time in the name, not the file's mtime (which copies
// and restores of the directory change), decides their age.

const fileTimeLayout = "20060102T150405Z"

var backupFileName = regexp.MustCompile(`^gatehouse-(\d{8}T\d{6}Z)\.backup$`)

// staleTempAge is how old a leftover temporary file (from a crash during a
// scheduled backup) must be before a later run removes it.
const staleTempAge = 24 * time.Hour

// Retention says which scheduled backups to keep. Zero fields do not
// prune; both apply when both are set.
type Retention struct {
	// Count keeps at most this many backups, the newest.
	Count int
	// MaxAge removes backups older than this.
	MaxAge time.Duration
}

// Scheduled is the outcome of RunScheduled.
type Scheduled struct {
	// Path of the backup written.
	Path     string
	Manifest *Manifest
	// Pruned lists the backups removed by the retention policy.
	Pruned []string
}

// FileName is the name RunScheduled gives a backup taken at t.
func FileName(t time.Time) string {
	return "gatehouse-" + t.UTC().Format(fileTimeLayout) + ".backup"
}

// RunScheduled writes a backup of src into dir as FileName(now), then
// applies keep to the backups in dir. It is what the worker runs on its
// schedule.
//
// The file appears atomically: it is written to a temporary file, synced,
// and renamed, and the directory is synced, so a crash leaves either no
// file or a complete one, never a truncated backup under a real name.
// Pruning runs only after a successful backup, never deletes the one just
// written, and ignores files it did not name. A backup that was written
// but could not all be pruned returns the result together with the error.
func RunScheduled(ctx context.Context, src Source, dir string, keep Retention, now time.Time, opts WriteOptions) (*Scheduled, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	name := FileName(now)
	path := filepath.Join(dir, name)
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("backup: %s already exists: %w", path, fs.ErrExist)
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	m, err := writeFileAtomic(ctx, src, path, opts)
	if err != nil {
		return nil, err
	}
	res := &Scheduled{Path: path, Manifest: m}
	res.Pruned, err = prune(dir, keep, now, name)
	return res, err
}

// WriteFile writes a backup of src to path atomically (see RunScheduled),
// with mode 0600: a backup holds password hashes and sealed secrets.
func WriteFile(ctx context.Context, src Source, path string, opts WriteOptions) (*Manifest, error) {
	return writeFileAtomic(ctx, src, path, opts)
}

func writeFileAtomic(ctx context.Context, src Source, path string, opts WriteOptions) (m *Manifest, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".gatehouse-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	if m, err = Write(ctx, src, bw, opts); err != nil {
		return nil, err
	}
	if err = bw.Flush(); err != nil {
		return nil, fmt.Errorf("backup: write %s: %w", f.Name(), err)
	}
	if err = f.Sync(); err != nil {
		return nil, fmt.Errorf("backup: sync %s: %w", f.Name(), err)
	}
	if err = f.Close(); err != nil {
		return nil, fmt.Errorf("backup: close %s: %w", f.Name(), err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	// The rename is durable only once the directory entry is.
	if d, derr := os.Open(dir); derr == nil {
		err = d.Sync()
		_ = d.Close()
		if err != nil {
			return nil, fmt.Errorf("backup: sync directory %s: %w", dir, err)
		}
	}
	return m, nil
}

// prune removes the backups keep does not retain, and stale temporary
// files, from dir.
func prune(dir string, keep Retention, now time.Time, current string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("backup: prune: %w", err)
	}
	type file struct {
		name string
		at   time.Time
	}
	var files []file
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".gatehouse-") && strings.HasSuffix(name, ".tmp") {
			if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > staleTempAge {
				errs = append(errs, os.Remove(filepath.Join(dir, name)))
			}
			continue
		}
		sm := backupFileName.FindStringSubmatch(name)
		if sm == nil || !e.Type().IsRegular() {
			continue
		}
		at, err := time.Parse(fileTimeLayout, sm[1])
		if err != nil {
			continue
		}
		files = append(files, file{name, at})
	}
	// Newest first.
	slices.SortFunc(files, func(a, b file) int { return b.at.Compare(a.at) })
	var pruned []string
	for i, f := range files {
		if f.name == current {
			continue
		}
		tooMany := keep.Count > 0 && i >= keep.Count
		tooOld := keep.MaxAge > 0 && now.Sub(f.at) > keep.MaxAge
		if !tooMany && !tooOld {
			continue
		}
		path := filepath.Join(dir, f.name)
		if err := os.Remove(path); err != nil {
			errs = append(errs, err)
			continue
		}
		pruned = append(pruned, path)
	}
	if err := errors.Join(errs...); err != nil {
		return pruned, fmt.Errorf("backup: prune: %w", err)
	}
	return pruned, nil
}
