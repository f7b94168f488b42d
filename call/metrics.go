package call

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/privnum/privnum/cdr"
)

// Metrics are the call-control figures an operator graphs. A nil *Metrics
// records nothing.
type Metrics struct {
	calls      *prometheus.CounterVec
	routing    prometheus.Histogram
	live       prometheus.Gauge
	reconnects prometheus.Counter
}

// NewMetrics registers call-control metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "privnum_calls_total",
			Help: "Calls ended, by disposition (answered, busy, no_answer, failed, cancelled, rejected).",
		}, []string{"disposition"}),
		routing: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "privnum_routing_seconds",
			Help:    "Time from StasisStart to the outbound originate request.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, 1},
		}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "privnum_live_calls",
			Help: "Calls in progress.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "privnum_ari_connects_total",
			Help: "ARI event connections established (first connect and reconnects).",
		}),
	}
	reg.MustRegister(m.calls, m.routing, m.live, m.reconnects)
	for _, d := range []cdr.Disposition{cdr.Answered, cdr.Busy, cdr.NoAnswer, cdr.Failed, cdr.Cancelled, cdr.Rejected} {
		m.calls.WithLabelValues(string(d))
	}
	return m
}

func (m *Metrics) countCall(d cdr.Disposition) {
	if m != nil {
		m.calls.WithLabelValues(string(d)).Inc()
	}
}

func (m *Metrics) observeRouting(d time.Duration) {
	if m != nil {
		m.routing.Observe(d.Seconds())
	}
}

func (m *Metrics) setLive(n int) {
	if m != nil {
		m.live.Set(float64(n))
	}
}

func (m *Metrics) connected() {
	if m != nil {
		m.reconnects.Inc()
	}
}
