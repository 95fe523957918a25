package module

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed5911dcdf/caddy-better-auth/betterauth"
)

// The collectors live for the process: every config generation registers
// them into its context's registry (Caddy's /metrics), so counts survive
// reloads. Labels are bounded: family names, fixed outcome words.
var metrics = struct {
	cacheLookups    *prometheus.CounterVec
	cacheEvictions  prometheus.Counter
	invalidations   *prometheus.CounterVec
	backendCalls    *prometheus.CounterVec
	backendDuration *prometheus.HistogramVec
	guard           *prometheus.CounterVec
	injections      prometheus.Counter
	injectedBytes   prometheus.Counter
	notInjected     *prometheus.CounterVec
}{
	cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "better_auth", Name: "cache_lookups_total",
		Help: "Cache lookups by query family and result (hit, miss, stale: served by stale_if_error).",
	}, []string{"family", "result"}),
	cacheEvictions: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "better_auth", Name: "cache_evictions_total",
		Help: "Entries evicted to stay within cache_size.",
	}),
	invalidations: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "better_auth", Name: "cache_invalidations_total",
		Help: "Invalidation events by source (local: auth traffic seen here; remote: from another replica).",
	}, []string{"source"}),
	backendCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "better_auth", Name: "backend_calls_total",
		Help: "Calls to Better Auth by query family and outcome (ok, refused: a 4xx answer, error).",
	}, []string{"family", "outcome"}),
	backendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "better_auth", Name: "backend_call_duration_seconds",
		Help:    "Latency of calls to Better Auth by query family.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"family"}),
	guard: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "better_auth", Name: "guard_decisions_total",
		Help: "Guard decisions: allowed, redirected, unauthorized (401), unavailable (503), guest_redirect, public (unguarded).",
	}, []string{"outcome"}),
	injections: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "better_auth", Name: "injections_total",
		Help: "Pages the dehydrated state was injected into.",
	}),
	injectedBytes: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "better_auth", Name: "injected_bytes_total",
		Help: "Bytes of injected state.",
	}),
	notInjected: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "better_auth", Name: "pages_not_injected_total",
		Help: "Responses passed through without injection, by reason (status, content_type, no_transform, encoding, no_insertion_point, ...).",
	}, []string{"reason"}),
}

func allCollectors() []prometheus.Collector {
	m := metrics
	return []prometheus.Collector{m.cacheLookups, m.cacheEvictions, m.invalidations, m.backendCalls,
		m.backendDuration, m.guard, m.injections, m.injectedBytes, m.notInjected}
}

// registerMetrics adds the collectors to a config's registry; registering
// again (a reload into the same registry) is fine.
func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	for _, c := range allCollectors() {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// observeCall records one backend call.
func observeCall(f *betterauth.Family, start time.Time, err error) {
	metrics.backendDuration.WithLabelValues(f.Name).Observe(time.Since(start).Seconds())
	outcome := "ok"
	var se *betterauth.StatusError
	switch {
	case err == nil:
	case errors.As(err, &se) && se.Code >= 400 && se.Code < 500 && se.Code != 429:
		outcome = "refused"
	default:
		outcome = "error"
	}
	metrics.backendCalls.WithLabelValues(f.Name, outcome).Inc()
}

// lookupCounters are the cache lookup counters per family, resolved once:
// the hot path does no label hashing.
var lookupCounters = func() map[*betterauth.Family]*[3]prometheus.Counter {
	m := map[*betterauth.Family]*[3]prometheus.Counter{}
	for _, f := range betterauth.Families {
		m[f] = &[3]prometheus.Counter{
			metrics.cacheLookups.WithLabelValues(f.Name, "miss"),
			metrics.cacheLookups.WithLabelValues(f.Name, "hit"),
			metrics.cacheLookups.WithLabelValues(f.Name, "stale"),
		}
	}
	return m
}()

func observeLookup(f *betterauth.Family, hit, stale bool) {
	i := 0
	if stale {
		i = 2
	} else if hit {
		i = 1
	}
	lookupCounters[f][i].Inc()
}

// guardCounters are the guard outcome counters, resolved once.
var guardCounters = func() map[string]prometheus.Counter {
	m := map[string]prometheus.Counter{}
	for _, o := range []string{"allowed", "redirected", "unauthorized", "unavailable", "guest_redirect", "public"} {
		m[o] = metrics.guard.WithLabelValues(o)
	}
	return m
}()
