package sources

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// readAll drains a reader in batches of n.
func readAll(t *testing.T, r Reader, n int) []Record {
	t.Helper()
	var out []Record
	buf := make([]Record, n)
	for {
		k, err := r.Read(context.Background(), buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if k == 0 {
			t.Fatal("Read returned 0, nil")
		}
	}
}

func openOnly(t *testing.T, s Source, after string) Reader {
	t.Helper()
	shards, err := s.Shards(context.Background())
	if err != nil || len(shards) == 0 {
		t.Fatalf("shards: %v %v", shards, err)
	}
	r, err := s.Open(context.Background(), shards[0], after)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFileJSONLinesSkipsBlankLinesAndResumes(t *testing.T) {
	p := writeFile(t, "in.jsonl", "{\"a\":1}\n\n{\"a\":2}\n{\"a\":3}")
	src, err := NewFile(FileConfig{Paths: []string{p}, Now: func() time.Time { return time.UnixMilli(5) }})
	if err != nil {
		t.Fatal(err)
	}
	if !IsBounded(src) {
		t.Error("file source must be bounded")
	}
	recs := readAll(t, openOnly(t, src, ""), 2)
	var got []any
	var pos []string
	for _, r := range recs {
		got = append(got, r.Value.(map[string]any)["a"])
		line, _, _ := strings.Cut(r.Position, ":")
		pos = append(pos, line)
		if r.Arrival != 5 {
			t.Errorf("arrival %d, want the injected clock", r.Arrival)
		}
	}
	if !reflect.DeepEqual(got, []any{1.0, 2.0, 3.0}) || !reflect.DeepEqual(pos, []string{"1", "3", "4"}) {
		t.Fatalf("values %v positions %v", got, pos)
	}
	again := readAll(t, openOnly(t, src, recs[1].Position), 10)
	if len(again) != 1 || again[0].Position != recs[2].Position {
		t.Fatalf("resume after line 3: %+v", again)
	}
	// A bare line number (a position from before the checksum) resumes
	// unchecked.
	if again := readAll(t, openOnly(t, src, "3"), 10); len(again) != 1 || again[0].Position != recs[2].Position {
		t.Fatalf("resume after bare line 3: %+v", again)
	}
}

func TestFileJSONLinesBadLineNamesLine(t *testing.T) {
	p := writeFile(t, "bad.jsonl", "{\"a\":1}\n{oops}\n")
	src, _ := NewFile(FileConfig{Paths: []string{p}})
	r := openOnly(t, src, "")
	buf := make([]Record, 10)
	n, err := r.Read(context.Background(), buf)
	var re *RecordError
	if n != 1 || !errors.As(err, &re) || re.Position != "line 2" || !errors.Is(err, ErrJSON) {
		t.Fatalf("n=%d err=%v; want the good record and an error naming line 2", n, err)
	}
}

func TestFileCSVTypesCellsAndChecksWidth(t *testing.T) {
	p := writeFile(t, "nab.csv", "timestamp,value,label\n2014-04-01 00:00:00,20.5,x\n2014-04-01 00:05:00,-3,007a\n")
	src, _ := NewFile(FileConfig{Paths: []string{p}})
	recs := readAll(t, openOnly(t, src, ""), 10)
	want := []any{
		map[string]any{"timestamp": "2014-04-01 00:00:00", "value": 20.5, "label": "x"},
		map[string]any{"timestamp": "2014-04-01 00:05:00", "value": -3.0, "label": "007a"},
	}
	if len(recs) != 2 || !reflect.DeepEqual([]any{recs[0].Value, recs[1].Value}, want) {
		t.Fatalf("got %+v", recs)
	}
	if !strings.HasPrefix(recs[1].Position, "3:") {
		t.Errorf("position %q, want line 3", recs[1].Position)
	}

	bad := writeFile(t, "bad.csv", "a,b\n1,2\n3\n")
	src, _ = NewFile(FileConfig{Paths: []string{bad}})
	r := openOnly(t, src, "")
	_, err := r.Read(context.Background(), make([]Record, 10))
	var re *RecordError
	if !errors.As(err, &re) || re.Position != "line 3" {
		t.Fatalf("err = %v, want one naming line 3", err)
	}
}

func TestFileConfigValidate(t *testing.T) {
	for _, c := range []FileConfig{{}, {Paths: []string{"a", "a"}}, {Paths: []string{"a"}, Format: "xml"}} {
		if _, err := NewFile(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err = %v, want ErrConfig", c, err)
		}
	}
}

func TestGeneratorDeterministicBoundedAndResumable(t *testing.T) {
	cfg := GeneratorConfig{Shards: 3, Keys: 10, Seed: 42, Count: 100, Start: time.UnixMilli(1_000_000)}
	g1, _ := NewGenerator(cfg)
	g2, _ := NewGenerator(cfg)
	shards, _ := g1.Shards(context.Background())
	if len(shards) != 3 || !g1.Bounded() {
		t.Fatalf("shards %v bounded %v", shards, g1.Bounded())
	}
	total := 0
	for _, sh := range shards {
		r1, _ := g1.Open(context.Background(), sh, "")
		r2, _ := g2.Open(context.Background(), sh, "")
		a, b := values(readAll(t, r1, 7)), values(readAll(t, r2, 16))
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("shard %s differs between runs with one seed", sh.ID)
		}
		total += len(a)
		m := a[0].(map[string]any)
		for _, f := range []string{"page", "user", "latency_ms", "status", "country", "ts"} {
			if _, ok := m[f]; !ok {
				t.Errorf("record lacks %q: %v", f, m)
			}
		}
		if m["ts"] != 1_000_000.0 || a[1].(map[string]any)["ts"] != 1_000_001.0 {
			t.Errorf("event times %v, %v; want Start and Start+1ms", m["ts"], a[1].(map[string]any)["ts"])
		}
		r3, _ := g1.Open(context.Background(), sh, "9")
		rest := values(readAll(t, r3, 5))
		if !reflect.DeepEqual(rest, a[10:]) {
			t.Fatalf("resumed shard %s does not continue the sequence", sh.ID)
		}
	}
	if total != 100 {
		t.Fatalf("%d records, want Count=100", total)
	}
}

func TestGeneratorRatePacesWithInjectedClock(t *testing.T) {
	g, _ := NewGenerator(GeneratorConfig{Rate: 10, Seed: 1})
	now := time.Unix(100, 0)
	var slept time.Duration
	g.now = func() time.Time { return now }
	g.sleep = func(ctx context.Context, d time.Duration) error { slept += d; now = now.Add(d); return nil }
	r := openOnly(t, g, "")
	buf := make([]Record, 100)
	n, err := r.Read(context.Background(), buf)
	if err != nil || n != 1 {
		t.Fatalf("first read n=%d err=%v, want 1 record due at open", n, err)
	}
	now = now.Add(time.Second)
	if n, _ = r.Read(context.Background(), buf); n != 10 {
		t.Fatalf("after 1s at 10/s got %d records, want 10", n)
	}
	if n, _ = r.Read(context.Background(), buf); n != 1 || slept != 100*time.Millisecond {
		t.Fatalf("next read n=%d slept %v, want 1 record after 100ms", n, slept)
	}
}

func TestMemoryChildrenFollowParents(t *testing.T) {
	m := NewMemory(FormatJSON,
		MemoryShard{ID: "p", Data: [][]byte{[]byte(`1`)}},
		MemoryShard{ID: "c1", Parents: []string{"p"}},
		MemoryShard{ID: "c2", Parents: []string{"p", "x"}},
	)
	r, err := m.Open(context.Background(), Shard{ID: "p"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if recs := readAll(t, r, 4); len(recs) != 1 || recs[0].Value != 1.0 {
		t.Fatalf("records %+v", recs)
	}
	var ids []string
	for _, c := range r.Children() {
		ids = append(ids, c.ID)
	}
	if !reflect.DeepEqual(ids, []string{"c1", "c2"}) {
		t.Fatalf("children %v", ids)
	}
}

func values(recs []Record) []any {
	out := make([]any, len(recs))
	for i, r := range recs {
		out[i] = r.Value
	}
	return out
}
