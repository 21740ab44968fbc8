// Package metrics holds Gatehouse's Prometheus collectors and the small
// recorder methods the rest of the program calls. Any package may import it
// (it imports nothing of ours but the model); the composition root creates
// one *Metrics and serves Handler on its own listener (metrics_listen), so
// /metrics is never exposed on the public port.
//
// Every recorder method is safe on a nil *Metrics and does nothing there,
// so services and tests need no metrics to run. Hot-path recorders
// (Decision, the HTTP middleware) use counters resolved once up front and
// allocate nothing per call.
package metrics

import (
	"database/sql"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "gatehouse"

// Forward-auth decision kinds; other values are counted as "other" so a
// caller cannot create unbounded series.
var decisionKinds = []string{"allow", "deny", "login", "unauthorized", "error", "other"}

// Metrics is the set of collectors of one process.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	routes       routeCache

	decisions map[string]prometheus.Counter
	signIns   *prometheus.CounterVec
	tokens    *prometheus.CounterVec

	jobRuns     *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
	jobLastRun  *prometheus.GaugeVec
	jobLastOK   *prometheus.GaugeVec

	redisUp       prometheus.Gauge
	revocations   *prometheus.CounterVec
	leader        prometheus.Gauge
	outboxPending prometheus.Gauge
}

// New registers the collectors, plus the Go runtime and process ones, in a
// registry of their own (not the global one, so tests can make many).
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{reg: reg}
	f := func(c prometheus.Collector) { reg.MustRegister(c) }

	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "http_requests_total",
		Help: "HTTP requests by route pattern (not raw path) and status code.",
	}, []string{"route", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds",
		Help:    "HTTP request latency by route pattern.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route"})
	f(m.httpRequests)
	f(m.httpDuration)
	m.routes.init(m)

	dec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "forwardauth_decisions_total",
		Help: "Forward-auth answers: allow, deny, login (sign-in needed), unauthorized (bad machine credential), error.",
	}, []string{"decision"})
	f(dec)
	m.decisions = make(map[string]prometheus.Counter, len(decisionKinds))
	for _, k := range decisionKinds {
		m.decisions[k] = dec.WithLabelValues(k)
	}

	m.signIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "signins_total",
		Help: "Interactive sign-ins by result (success, failure, locked_out).",
	}, []string{"result"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "tokens_issued_total",
		Help: "Tokens issued by kind (access, id, refresh, api...).",
	}, []string{"kind"})
	f(m.signIns)
	f(m.tokens)
	for _, r := range []string{"success", "failure", "locked_out"} {
		m.signIns.WithLabelValues(r) // present from the start, at 0
	}

	m.jobRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "job_runs_total",
		Help: "Worker job runs by job and outcome (ok, error).",
	}, []string{"job", "outcome"})
	m.jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "job_duration_seconds",
		Help:    "Worker job run time.",
		Buckets: []float64{.001, .01, .1, .5, 1, 5, 30, 120},
	}, []string{"job"})
	m.jobLastRun = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "job_last_run_timestamp_seconds",
		Help: "Unix time the job last finished.",
	}, []string{"job"})
	m.jobLastOK = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "job_last_success",
		Help: "1 if the job's last run succeeded, 0 if it failed.",
	}, []string{"job"})
	f(m.jobRuns)
	f(m.jobDuration)
	f(m.jobLastRun)
	f(m.jobLastOK)

	m.redisUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "redis_up",
		Help: "1 when Redis answers, 0 when it does not (serving continues degraded) or is not configured.",
	})
	m.revocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "session_revocations_received_total",
		Help: "Session revocations received from other replicas, by channel (redis, store).",
	}, []string{"source"})
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "worker_leader",
		Help: "1 while this worker holds the leader lease.",
	})
	m.outboxPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "outbox_claimed_last_run",
		Help: "Messages the last outbox run picked up.",
	})
	f(m.redisUp)
	f(m.revocations)
	f(m.leader)
	f(m.outboxPending)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is for tests and for registering extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Decision counts one forward-auth answer. kind is one of allow, deny,
// login, unauthorized, error; anything else counts as other. It takes a
// map lookup and an atomic add: cheap enough for every check.
//
// Middleware already counts a decision for every request labelled
// ForwardAuthRoute, derived from its status; a caller that wants finer
// kinds (unauthorized vs login) should call Decision itself and stop
// labelling checks ForwardAuthRoute, or they are counted twice.
func (m *Metrics) Decision(kind string) {
	if m == nil {
		return
	}
	c, ok := m.decisions[kind]
	if !ok {
		c = m.decisions["other"]
	}
	c.Inc()
}

// SignIn counts an interactive sign-in attempt: "success", "failure" or
// "locked_out".
func (m *Metrics) SignIn(result string) {
	if m == nil {
		return
	}
	switch result {
	case "success", "failure", "locked_out":
	default:
		return
	}
	m.signIns.WithLabelValues(result).Inc()
}

// TokenIssued counts an issued token of the given kind (a short, fixed
// vocabulary such as access, id, refresh, api).
func (m *Metrics) TokenIssued(kind string) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues(kind).Inc()
}

// JobRun records one run of a worker job.
func (m *Metrics) JobRun(job string, took time.Duration, err error) {
	if m == nil {
		return
	}
	outcome, ok := "ok", 1.0
	if err != nil {
		outcome, ok = "error", 0
	}
	m.jobRuns.WithLabelValues(job, outcome).Inc()
	m.jobDuration.WithLabelValues(job).Observe(took.Seconds())
	m.jobLastRun.WithLabelValues(job).Set(float64(time.Now().Unix()))
	m.jobLastOK.WithLabelValues(job).Set(ok)
}

// SetLeader records whether this worker leads.
func (m *Metrics) SetLeader(leader bool) {
	if m == nil {
		return
	}
	m.leader.Set(b2f(leader))
}

// OutboxClaimed records how many messages an outbox run picked up.
func (m *Metrics) OutboxClaimed(n int) {
	if m == nil {
		return
	}
	m.outboxPending.Set(float64(n))
}

// SetRedisUp records Redis health.
func (m *Metrics) SetRedisUp(up bool) {
	if m == nil {
		return
	}
	m.redisUp.Set(b2f(up))
}

// RevocationsReceived counts revocations that arrived from other replicas
// through source ("redis" or "store").
func (m *Metrics) RevocationsReceived(source string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.revocations.WithLabelValues(source).Add(float64(n))
}

// RegisterDB exports the pool statistics of db (open, in use, idle
// connections, waits) under the given pool name, read at scrape time.
func (m *Metrics) RegisterDB(pool string, db *sql.DB) {
	if m == nil || db == nil {
		return
	}
	m.reg.MustRegister(collectors.NewDBStatsCollector(db, pool))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
