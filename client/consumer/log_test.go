package consumer

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestDefaultLoggerIsQuiet: without Options.Logger a worker logs to
// slog.Default()'s handler at WARN and above only, so lease changes
// (INFO) do not fill a program's output; a Logger given is used as is.
func TestDefaultLoggerIsQuiet(t *testing.T) {
	var out testutil.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	var o Options
	o.EnsureDefaults()
	l := o.Logger.With("worker", "w")
	l.Info("shard lease taken", "shard", "s0")
	l.Debug("debug line")
	l.Warn("consumer group sync failed; retrying")
	l.WithGroup("g").Error("shard reader stopped")
	got := out.String()
	for _, quiet := range []string{"shard lease taken", "debug line"} {
		if strings.Contains(got, quiet) {
			t.Errorf("the default logger wrote %q below WARN:\n%s", quiet, got)
		}
	}
	for _, loud := range []string{"level=WARN msg=\"consumer group sync failed; retrying\" worker=w", "level=ERROR msg=\"shard reader stopped\" worker=w"} {
		if !strings.Contains(got, loud) {
			t.Errorf("the default logger did not write %q:\n%s", loud, got)
		}
	}

	var mine testutil.Buffer
	o = Options{Logger: slog.New(slog.NewTextHandler(&mine, nil))}
	o.EnsureDefaults()
	o.Logger.Info("shard lease taken")
	if !strings.Contains(mine.String(), "shard lease taken") {
		t.Errorf("a Logger given was not used at INFO: %q", mine.String())
	}
}
