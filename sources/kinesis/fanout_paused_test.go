package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/sources"
)

// TestPausedFanOutResubscribes reads a shard with enhanced fan-out from a
// `runnel serve` stopped (SIGSTOP) mid-subscription, with Reads cut short
// every 100 ms as checkpoints cut them: the source ends the subscription
// that brings no event, warns naming the stream, the shard and the
// endpoint, gives up the subscriptions that go unanswered meanwhile, and
// once the server runs again subscribes from where the last
// event left off and logs the recovery: every record once, in put order.
func TestPausedFanOutResubscribes(t *testing.T) {
	t0 := time.Now()
	srv, c := runnelWithStream(t, "frozen", 1)
	t.Logf("server up after %s", time.Since(t0).Round(time.Millisecond))
	want := map[string]int{}
	batch := func(n int) []putEntry {
		var entries []putEntry
		for i := range n {
			k := fmt.Sprintf("k%d", i%3)
			entries = append(entries, putEntry{k, fmt.Sprintf(`{"k":%q,"n":%d}`, k, want[k])})
			want[k]++
		}
		return entries
	}
	if err := putBatch(c, "frozen", batch(40)); err != nil {
		t.Fatal(err)
	}
	var logs testutil.Buffer
	src := newSource(t, Config{Stream: "frozen", Conn: kinesisconn.Conn{Endpoint: srv.URL}, Consumer: "job",
		CallTimeout: 300 * time.Millisecond})
	src.log = slog.New(slog.NewTextHandler(&logs, nil))
	// Longer than the 5 s the server leaves between events while idle,
	// so that only the pause ends a subscription.
	src.eventGap = 2 * time.Second
	src.backoffMax = 200 * time.Millisecond
	shard := "shardId-000000000000"
	r, err := src.Open(context.Background(), sources.Shard{ID: shard}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []readRecord
	buf := make([]sources.Record, 7)
	began := time.Now()
	readUntil := func(what string, done func() bool) {
		t.Helper()
		defer func() { t.Logf("%s: after %s", what, time.Since(began).Round(time.Millisecond)) }()
		for reads := 0; !done(); reads++ {
			if reads == 600 {
				t.Fatalf("%s: not after %d reads (%d records); logs:\n%s", what, reads, len(got), logs.String())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			n, err := r.Read(ctx, buf)
			cancel()
			for _, rec := range buf[:n] {
				got = append(got, readRecord{shard, rec})
			}
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("read: %v", err)
			}
		}
	}
	readUntil("the first 40 records", func() bool { return len(got) >= 40 })

	srv.Signal(syscall.SIGSTOP)
	paused := true
	defer func() {
		if paused {
			srv.Signal(syscall.SIGCONT)
		}
	}()
	noEvent := []string{"level=WARN", "stream=frozen", "shard=" + shard, "endpoint=" + srv.URL, "call=\"SubscribeToShard events\"", "no event"}
	readUntil("a warning that the subscription brings no event", func() bool { return lineWith(logs.String(), noEvent) })
	// The subscriptions that follow go unanswered too, each given up.
	readUntil("two more subscriptions given up", func() bool { return src.Retried() >= 3 })
	srv.Signal(syscall.SIGCONT)
	paused = false

	if err := putBatch(c, "frozen", batch(40)); err != nil {
		t.Fatal(err)
	}
	readUntil("the next 40 records", func() bool { return len(got) >= 80 })
	checkOncePerKeyOrder(t, got, want)
	if p := r.(*fanOutReader).pending; len(p) > 0 {
		t.Fatalf("%d records read beyond the 80 put", len(p))
	}
	recovered := []string{"level=INFO", "call succeeded again", "shard=" + shard, "call=SubscribeToShard"}
	if !lineWith(logs.String(), recovered) {
		t.Fatalf("no log line holds all of %q; the logs:\n%s", recovered, logs.String())
	}
	warns := strings.Count(logs.String(), "level=WARN")
	t.Logf("%d retried calls, %d warnings", src.Retried(), warns)
	if int64(warns) > 1+src.Retried()/10 {
		t.Fatalf("%d warnings for %d failures of one series, want one when it starts and one every tenth; logs:\n%s", warns, src.Retried(), logs.String())
	}
}

// lineWith reports whether a line of logs holds all of want.
func lineWith(logs string, want []string) bool {
	for _, line := range strings.Split(logs, "\n") {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return true
		}
	}
	return false
}
