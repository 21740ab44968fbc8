// Package worker runs Gatehouse's periodic jobs (garbage collection, audit
// retention, OIDC maintenance, outbox delivery) under leader election, so
// that any number of workers may run and exactly one of them does the
// work at a time.
//
// Election uses a lease row in the store (store.Leases), which works the
// same on SQLite and PostgreSQL: the leader renews it every third of its
// TTL; if the leader dies, another worker takes the lease over once it
// expires. A worker that fails to renew stops its jobs before the lease
// can pass to anyone else (it gives up at 2/3 of the TTL without a
// successful renewal), so two workers never run jobs at the same time.
package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/metrics"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// LeaderLease is the name of the lease the workers compete for.
const LeaderLease = "worker-leader"

// Job is one periodic task.
type Job struct {
	Name string
	// Every is the period; the first run is right after gaining the lead.
	Every time.Duration
	// Run does one round and returns a short summary for the log ("" when
	// there was nothing to do).
	Run func(ctx context.Context) (summary string, err error)
}

// Status is a job's last run.
type Status struct {
	LastRun  time.Time
	Duration time.Duration
	Err      error
	Summary  string
}

// Options configure a Worker.
type Options struct {
	Leases store.Leases
	Jobs   []Job
	// LeaseTTL defaults to 15s.
	LeaseTTL time.Duration
	// Holder names this worker in the lease (default host-pid-random).
	Holder  string
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Worker runs jobs while it holds the leader lease.
type Worker struct {
	o   Options
	log *slog.Logger

	mu     sync.Mutex
	status map[string]Status
	leader bool
}

// New returns a Worker.
func New(o Options) *Worker {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 15 * time.Second
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Holder = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Worker{o: o, log: o.Logger.With("component", "worker", "holder", o.Holder), status: map[string]Status{}}
}

// Holder is this worker's lease holder name.
func (w *Worker) Holder() string { return w.o.Holder }

// Leader reports whether this worker currently holds the lease.
func (w *Worker) Leader() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.leader
}

// Status returns the last run of every job that has run here.
func (w *Worker) Status() map[string]Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]Status, len(w.status))
	for k, v := range w.status {
		out[k] = v
	}
	return out
}

// Run competes for the lease until ctx ends, running the jobs while it
// leads, and releases the lease on the way out so another worker takes
// over at once instead of after the TTL.
func (w *Worker) Run(ctx context.Context) {
	renew := w.o.LeaseTTL / 3
	var (
		jobs      *running
		lastRenew time.Time
		// watchdog cancels the jobs 2/3 of a TTL after the last successful
		// renewal began, whatever the loop is doing (a renewal can hang on
		// a stalled database): they stop before the lease can expire and
		// pass to another worker.
		watchdog *time.Timer
	)
	stopJobs := func(why string) {
		if watchdog != nil {
			watchdog.Stop()
		}
		if jobs == nil {
			return
		}
		jobs.stop()
		jobs = nil
		w.setLeader(false)
		w.log.Info("stopped leading", "why", why)
	}
	t := time.NewTicker(renew)
	defer t.Stop()
	for {
		now := w.o.Now()
		began := time.Now()
		actx, cancel := context.WithTimeout(ctx, renew)
		held, err := w.o.Leases.AcquireLease(actx, LeaderLease, w.o.Holder, now, w.o.LeaseTTL)
		cancel()
		switch {
		case ctx.Err() != nil:
		case err != nil:
			w.log.Warn("renewing the leader lease", "err", err)
			// Without a renewal for 2/3 of the TTL, stop before the lease
			// can expire and pass to another worker.
			if jobs != nil && now.Sub(lastRenew) >= 2*w.o.LeaseTTL/3 {
				stopJobs("lease renewal failing")
			}
		case held:
			lastRenew = now
			if jobs == nil {
				w.setLeader(true)
				w.log.Info("leading: running jobs", "jobs", len(w.o.Jobs))
				jobs = start(ctx, w.runJobs)
			}
			if watchdog != nil {
				watchdog.Stop()
			}
			j := jobs
			watchdog = time.AfterFunc(2*w.o.LeaseTTL/3-time.Since(began), func() {
				w.log.Warn("leader lease not renewed in time: cancelling jobs")
				j.cancel()
			})
		default:
			stopJobs("lease held by another worker")
		}
		select {
		case <-ctx.Done():
			stopJobs("shutting down")
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := w.o.Leases.ReleaseLease(rctx, LeaderLease, w.o.Holder); err != nil {
				w.log.Warn("releasing the leader lease", "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
	}
}

// running is a goroutine with its own cancel.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func start(ctx context.Context, fn func(context.Context)) *running {
	ctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); fn(ctx) }()
	return r
}

// stop cancels and waits.
func (r *running) stop() {
	r.cancel()
	<-r.done
}

func (w *Worker) setLeader(b bool) {
	w.mu.Lock()
	w.leader = b
	w.mu.Unlock()
	w.o.Metrics.SetLeader(b)
}

// runJobs runs each job on its own schedule until ctx ends.
func (w *Worker) runJobs(ctx context.Context) {
	var wg sync.WaitGroup
	for _, j := range w.o.Jobs {
		wg.Go(func() {
			t := time.NewTicker(j.Every)
			defer t.Stop()
			for {
				w.RunJob(ctx, j)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
}

// RunJob runs j once and records the outcome in the log, the metrics and
// Status. A panicking job is recorded as failed; the worker carries on.
func (w *Worker) RunJob(ctx context.Context, j Job) {
	start := time.Now()
	summary, err := func() (s string, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return j.Run(ctx)
	}()
	if ctx.Err() != nil && err != nil {
		return // cut short by shutdown or lost lead: not the job's failure
	}
	took := time.Since(start)
	w.mu.Lock()
	w.status[j.Name] = Status{LastRun: start, Duration: took, Err: err, Summary: summary}
	w.mu.Unlock()
	w.o.Metrics.JobRun(j.Name, took, err)
	switch {
	case err != nil:
		w.log.Warn("job failed", "job", j.Name, "took", took, "err", err)
	case summary != "" || j.Every >= time.Minute:
		w.log.Info("job done", "job", j.Name, "took", took, "result", summary)
	default:
		// Frequent idle runs (the outbox every few seconds) would drown
		// the log; metrics still count them.
		w.log.Debug("job done", "job", j.Name, "took", took)
	}
}
