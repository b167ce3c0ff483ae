package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rateLimited is a slog.Handler that passes at most burst records per
// second of each kind (level and the start of the message) and drops the
// rest, counting them: a failing disk or a storm of identical errors (Pebble
// retrying a write on a full disk logs thousands of lines a second) must
// not flood the log or fill what is left of the disk. The next record of a
// kind that passes carries how many were dropped ("suppressed").
type rateLimited struct {
	next  slog.Handler
	burst float64
	st    *rateState
}

type rateState struct {
	mu    sync.Mutex
	kinds map[string]*rateKind
}

type rateKind struct {
	tokens     float64
	last       time.Time
	suppressed int
}

// maxRateKinds bounds the kinds remembered; past it they are forgotten.
const maxRateKinds = 4096

func newRateLimited(next slog.Handler, perSecond int) slog.Handler {
	return &rateLimited{next: next, burst: float64(perSecond), st: &rateState{kinds: map[string]*rateKind{}}}
}

func (h *rateLimited) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *rateLimited) Handle(ctx context.Context, r slog.Record) error {
	msg := r.Message
	if len(msg) > 40 {
		msg = msg[:40]
	}
	key := r.Level.String() + " " + msg
	now := time.Now()
	h.st.mu.Lock()
	k := h.st.kinds[key]
	if k == nil {
		if len(h.st.kinds) >= maxRateKinds {
			h.st.kinds = map[string]*rateKind{}
		}
		k = &rateKind{tokens: h.burst, last: now}
		h.st.kinds[key] = k
	}
	k.tokens = min(h.burst, k.tokens+now.Sub(k.last).Seconds()*h.burst)
	k.last = now
	if k.tokens < 1 {
		k.suppressed++
		h.st.mu.Unlock()
		return nil
	}
	k.tokens--
	dropped := k.suppressed
	k.suppressed = 0
	h.st.mu.Unlock()
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", dropped))
	}
	return h.next.Handle(ctx, r)
}

func (h *rateLimited) WithAttrs(as []slog.Attr) slog.Handler {
	return &rateLimited{next: h.next.WithAttrs(as), burst: h.burst, st: h.st}
}

func (h *rateLimited) WithGroup(name string) slog.Handler {
	return &rateLimited{next: h.next.WithGroup(name), burst: h.burst, st: h.st}
}
