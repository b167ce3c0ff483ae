package sinks

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// logLines hands each record logged at level or above to a channel.
type logLines struct {
	level slog.Level
	ch    chan slog.Record
}

func (h logLines) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h logLines) Handle(_ context.Context, r slog.Record) error {
	h.ch <- r
	return nil
}
func (h logLines) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logLines) WithGroup(string) slog.Handler      { return h }

func attr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// A call that has not returned after the watchdog's wait is said in a
// WARN naming job, sink, target and call, again when the wait has doubled,
// is counted and listed as stalled until it returns; a call that returns
// in time is not.
func TestWatchdogSaysAStalledCall(t *testing.T) {
	lines := logLines{level: slog.LevelInfo, ch: make(chan slog.Record, 16)}
	w := NewWatchdog("stall-job", "out", "postgres", "table results", slog.New(lines)).WithAfter(time.Millisecond)
	key := StallKey{"stall-job", "out", "postgres"}
	before := StalledCalls()[key]

	done := w.Watch("the transaction of checkpoint epoch 3")
	var waited []string
	for range 2 {
		r := <-lines.ch
		if r.Level != slog.LevelWarn || attr(r, "sink") != "out" || attr(r, "job") != "stall-job" ||
			attr(r, "target") != "table results" || attr(r, "call") != "the transaction of checkpoint epoch 3" {
			t.Fatalf("line %q %v, want a WARN naming job, sink, target and call", r.Message, r.Level)
		}
		waited = append(waited, attr(r, "waited"))
	}
	if got := StalledCalls()[key]; got != before+1 {
		t.Errorf("stalled calls %d, want %d (one call, said twice)", got, before+1)
	}
	st := Stalled("stall-job")
	if len(st) != 1 || st[0].Sink != "out" || !strings.Contains(st[0].String(), "sink out (postgres, table results): the transaction of checkpoint epoch 3 has waited") {
		t.Fatalf("stalled: %v", st)
	}
	if len(Stalled("other-job")) != 0 {
		t.Errorf("another job lists this job's stall")
	}
	done()
	for r := range lines.ch {
		if r.Level == slog.LevelInfo {
			if !strings.Contains(r.Message, "answered") {
				t.Fatalf("line after the call returned: %q", r.Message)
			}
			break
		}
	}
	if st := Stalled("stall-job"); len(st) != 0 {
		t.Errorf("still stalled after the call returned: %v", st)
	}
	t.Logf("waits said: %v", waited)

	// A call that returns before the wait is not said.
	quick := NewWatchdog("stall-job", "out", "postgres", "table results", slog.New(lines))
	quick.Watch("a quick call")()
	if got := StalledCalls()[key]; got != before+1 {
		t.Errorf("stalled calls %d after a quick call, want %d", got, before+1)
	}
	var nilWatch *Watchdog
	nilWatch.Watch("nothing")()
}
