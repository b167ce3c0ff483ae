package web

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/runnel-dev/runnel/web/auth"
)

// slots caps how many requests of one costly or long-lived kind (previews,
// each running a job graph; live result streams, each a subscription
// held open) run at once: over the whole server, and per token, so that
// one token cannot take every slot. With auth off there are no tokens and
// only the server-wide cap applies. A request past a cap is answered at
// once with 429 too_many_requests naming the limit and its flag.
type slots struct {
	what   string // "previews"
	flag   string // "--max-previews"
	total  int
	perKey int
	mu     struct {
		sync.Mutex
		used  int
		byKey map[string]int
	}
	refused atomic.Int64
}

func newSlots(what, flag string, total int) *slots {
	s := &slots{what: what, flag: flag, total: total, perKey: perTokenShare(total)}
	s.mu.byKey = map[string]int{}
	return s
}

// perTokenShare is what one token may hold of a server-wide cap: half of
// it, at least one.
func perTokenShare(total int) int { return max(1, total/2) }

// acquire takes a slot for the caller of r; the caller must call release
// exactly once when the request ends (however it ends). When no slot is
// free it returns the error to answer instead.
func (s *slots) acquire(r *http.Request) (release func(), err *apiError) {
	key := ""
	if p := PrincipalFrom(r.Context()); p != nil && p != auth.Anonymous {
		key = p.Name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.used >= s.total {
		s.refused.Add(1)
		return nil, s.tooMany(fmt.Sprintf("%d %s under way, the server's limit (%s %d); retry when one has ended", s.mu.used, s.what, s.flag, s.total))
	}
	if key != "" && s.mu.byKey[key] >= s.perKey {
		s.refused.Add(1)
		return nil, s.tooMany(fmt.Sprintf("token %s has %d %s under way, a token's limit (half of %s %d); retry when one has ended",
			quoteHost(key), s.mu.byKey[key], s.what, s.flag, s.total))
	}
	s.mu.used++
	if key != "" {
		s.mu.byKey[key]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.mu.used--
			if key != "" {
				if s.mu.byKey[key]--; s.mu.byKey[key] <= 0 {
					delete(s.mu.byKey, key)
				}
			}
		})
	}, nil
}

func (s *slots) tooMany(msg string) *apiError {
	e := newError("too_many_requests", "", "too many "+s.what+": "+msg)
	e.Limit = s.flag
	return e
}

// inUse is how many slots are taken.
func (s *slots) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.used
}

// slotsCollector exports the slots' use, caps and refusals.
type slotsCollector struct {
	all                  []*slots
	inUse, cap, refusals *prometheus.Desc
}

func newSlotsCollector(all ...*slots) *slotsCollector {
	return &slotsCollector{all: all,
		inUse:    prometheus.NewDesc("runnel_http_slots_in_use", "Costly or long-lived requests under way, by kind (previews, live_results).", []string{"kind"}, nil),
		cap:      prometheus.NewDesc("runnel_http_slots_limit", "The server-wide cap of each kind (--max-previews, --max-live-results).", []string{"kind"}, nil),
		refusals: prometheus.NewDesc("runnel_http_slots_refused_total", "Requests refused with 429 because their kind's cap, or the token's share of it, was taken.", []string{"kind"}, nil),
	}
}

func (c *slotsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inUse
	ch <- c.cap
	ch <- c.refusals
}

func (c *slotsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.all {
		kind := metricKind(s.what)
		ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(s.inUse()), kind)
		ch <- prometheus.MustNewConstMetric(c.cap, prometheus.GaugeValue, float64(s.total), kind)
		ch <- prometheus.MustNewConstMetric(c.refusals, prometheus.CounterValue, float64(s.refused.Load()), kind)
	}
}

func metricKind(what string) string { return strings.ReplaceAll(what, " ", "_") }

// writeTooMany answers a request refused by a slot cap: 429 with
// Retry-After.
func writeTooMany(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Retry-After", "1")
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}
