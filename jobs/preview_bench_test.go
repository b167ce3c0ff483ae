package jobs

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkPreview4Operators: a preview of a four-operator job (map,
// filter, map, window) over the last 10,000 records of a stream: the
// answer the editor waits for. docs/jobs.md has the figure.
func BenchmarkPreview4Operators(b *testing.B) {
	st, dir, log := managerStore(b)
	putClicks(b, st, 10_000)
	m := startManager(b, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
	src := []byte(`name: pv4
source:
  stream: clicks
  event_time: "r => r.ts"
operators:
  - id: parse
    map: "r => ({page: r.page, ms: r.ms ? r.ms.value : 0, ts: r.ts})"
  - id: slow
    filter: "r => r.ms > 5"
  - id: label
    map: "r => ({page: r.page, ms: r.ms, tier: r.ms > 15 ? 'high' : 'mid'})"
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 1m
      aggregate: {views: count, total: sum(ms)}
sinks:
  - {id: out, stream: {name: results}}
`)
	b.ResetTimer()
	for b.Loop() {
		res, err := m.Preview(context.Background(), src, 10_000)
		if err != nil || res.RecordsRead != 10_000 || res.TimedOut {
			b.Fatalf("preview: %v %+v", err, res)
		}
	}
	b.ReportMetric(10_000, "records/op")
}
