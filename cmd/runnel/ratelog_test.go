package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestRateLimitedLog: a storm of one message passes at most the burst,
// other messages are not held back by it, and the next line of the kind
// that passes says how many were dropped.
func TestRateLimitedLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newRateLimited(slog.NewTextHandler(&buf, nil), 5))
	shard := log.With("shard", "s1")
	for i := 0; i < 1000; i++ {
		shard.Error("pebble: background error: no space left on device", "i", i)
	}
	log.Info("another message")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	storm := countLines(buf.String(), "no space left")
	if storm < 5 || storm > 7 {
		t.Fatalf("%d of 1000 identical lines passed, want about the burst of 5:\n%s", storm, buf.String())
	}
	if !strings.Contains(lines[len(lines)-1], "another message") {
		t.Fatalf("a different message was held back:\n%s", buf.String())
	}
	h := newRateLimited(slog.NewTextHandler(&buf, nil), 5).(*rateLimited)
	msg := "pebble: background error: no space left on device"
	h.st.kinds["ERROR "+msg[:40]] = &rateKind{suppressed: 42, tokens: 5}
	buf.Reset()
	slog.New(h).Error(msg)
	if !strings.Contains(buf.String(), "suppressed=42") {
		t.Fatalf("the line after a storm does not say how many were dropped: %s", buf.String())
	}
}
