package functions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/sources"
)

// feed is a one-shard source whose records a test hands in as it goes;
// Read blocks until there are some, as a stream's reader does.
type feed struct {
	ch     chan sources.Record
	closed bool
}

func newFeed() *feed { return &feed{ch: make(chan sources.Record, 10_000)} }

func (f *feed) Shards(context.Context) ([]sources.Shard, error) {
	return []sources.Shard{{ID: "shard-0"}}, nil
}

func (f *feed) Open(_ context.Context, sh sources.Shard, after string) (sources.Reader, error) {
	return &feedReader{f: f}, nil
}

// put adds records n0..n1-1 with key k<i%keys>, arrival at ms.
func (f *feed) put(n0, n1 int, arrival int64, data func(i int) any) {
	for i := n0; i < n1; i++ {
		var d any = map[string]any{"i": int64(i)}
		if data != nil {
			d = data(i)
		}
		f.ch <- sources.Record{Value: d, PartitionKey: fmt.Sprintf("k%d", i%3), Position: fmt.Sprintf("%04d", i), Arrival: arrival}
	}
}

type feedReader struct{ f *feed }

func (r *feedReader) Read(ctx context.Context, buf []sources.Record) (int, error) {
	select {
	case rec, ok := <-r.f.ch:
		if !ok {
			return 0, io.EOF
		}
		buf[0] = rec
		n := 1
		for n < len(buf) {
			select {
			case rec, ok := <-r.f.ch:
				if !ok {
					return n, nil
				}
				buf[n] = rec
				n++
			default:
				return n, nil
			}
		}
		return n, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (r *feedReader) Children() []sources.Shard { return nil }
func (r *feedReader) Close() error              { return nil }

func openBatched(t *testing.T, f *feed, b Batching) sources.Reader {
	t.Helper()
	r, err := Batched(f, b).Open(context.Background(), sources.Shard{ID: "shard-0"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readBatch reads one batch and returns it with its position.
func readBatch(t *testing.T, r sources.Reader, ctx context.Context) (*Batch, string, error) {
	t.Helper()
	buf := make([]sources.Record, 4)
	n, err := r.Read(ctx, buf)
	if err != nil {
		return nil, "", err
	}
	if n != 1 {
		t.Fatalf("read %d records, want one batch", n)
	}
	return buf[0].Value.(*Batch), buf[0].Position, nil
}

func mustBatch(t *testing.T, r sources.Reader) (*Batch, string) {
	t.Helper()
	b, pos, err := readBatch(t, r, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return b, pos
}

// Without a batching window, a batch is what is there, up to the batch
// size (times the parallelization factor); its position is its last
// record's.
func TestBatchSizes(t *testing.T) {
	f := newFeed()
	f.put(0, 250, base, nil)
	r := openBatched(t, f, Batching{Size: 40, Parallel: 2})
	var sizes []int
	for _, want := range []string{"0079", "0159", "0239", "0249"} {
		b, pos := mustBatch(t, r)
		sizes = append(sizes, len(b.Records))
		if pos != want || b.Records[len(b.Records)-1].SequenceNumber != want {
			t.Fatalf("batch ends at %s (position %s), want %s", b.Records[len(b.Records)-1].SequenceNumber, pos, want)
		}
	}
	if !slices.Equal(sizes, []int{80, 80, 80, 10}) {
		t.Errorf("batch sizes %v", sizes)
	}
	close(f.ch)
	if _, _, err := readBatch(t, r, context.Background()); !errors.Is(err, io.EOF) {
		t.Errorf("after the last batch: %v, want EOF", err)
	}
}

// With a batching window, a batch waits for more records until it is full
// or the window has passed since its first record.
func TestBatchingWindow(t *testing.T) {
	f := newFeed()
	r := openBatched(t, f, Batching{Size: 10, Window: 50 * time.Millisecond})
	f.put(0, 3, base, nil)
	go func() {
		time.Sleep(5 * time.Millisecond)
		f.put(3, 5, base, nil)
	}()
	b, pos := mustBatch(t, r)
	// The window is long against the goroutine's pause, but on a loaded
	// machine the batch may close first: what it holds must then be a
	// prefix, and the rest follows.
	got := seqs(b.Records)
	if len(got) < 5 {
		b2, _ := mustBatch(t, r)
		got = append(got, seqs(b2.Records)...)
	}
	if !slices.Equal(got, []string{"0000", "0001", "0002", "0003", "0004"}) || pos != b.Records[len(b.Records)-1].SequenceNumber {
		t.Errorf("batches hold %v (position %s)", got, pos)
	}
	// A full batch does not wait.
	f.put(5, 15, base, nil)
	b, _ = mustBatch(t, r)
	if len(b.Records) != 10 {
		t.Errorf("a full batch held %d records", len(b.Records))
	}
}

// A read that a checkpoint interrupts loses nothing: the records gathered
// come in the next batch.
func TestBatchSurvivesInterruptedRead(t *testing.T) {
	f := newFeed()
	r := openBatched(t, f, Batching{Size: 10, Window: time.Hour})
	f.put(0, 4, base, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, _, err := readBatch(t, r, ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted read: %v", err)
	}
	f.put(4, 10, base, nil)
	b, pos := mustBatch(t, r)
	if len(b.Records) != 10 || pos != "0009" {
		t.Errorf("after the interruption: %v at %s", seqs(b.Records), pos)
	}
}

// Filter criteria drop records before batching; when a read held only
// dropped records, an empty batch carries their position on, so a
// checkpoint does not read them again.
func TestBatchFilterPassesPositions(t *testing.T) {
	flt, err := ParseFilter(`{"data": {"keep": [true]}}`)
	if err != nil {
		t.Fatal(err)
	}
	f := newFeed()
	r := openBatched(t, f, Batching{Size: 10, Filter: flt})
	f.put(0, 6, base, func(i int) any { return map[string]any{"keep": i%2 == 1} })
	b, pos := mustBatch(t, r)
	if !slices.Equal(seqs(b.Records), []string{"0001", "0003", "0005"}) || pos != "0005" {
		t.Errorf("batch %v at %s", seqs(b.Records), pos)
	}
	f.put(6, 9, base, func(int) any { return map[string]any{"keep": false} })
	b, pos = mustBatch(t, r)
	if len(b.Records) != 0 || pos != "0008" {
		t.Errorf("only filtered records: batch %v at %s, want an empty batch at 0008", seqs(b.Records), pos)
	}
	f.put(9, 11, base, func(i int) any { return map[string]any{"keep": i == 9} })
	b, pos = mustBatch(t, r)
	if !slices.Equal(seqs(b.Records), []string{"0009"}) || pos != "0010" {
		t.Errorf("batch %v at %s, want [0009] at 0010 (past the filtered 0010)", seqs(b.Records), pos)
	}
}

// Tumbling windows cut batches at window boundaries of the arrival time.
func TestBatchesCutAtWindows(t *testing.T) {
	const minute = int64(60_000)
	w0 := base - base%minute
	f := newFeed()
	f.put(0, 3, w0+10, nil)
	f.put(3, 5, w0+minute+5, nil)
	r := openBatched(t, f, Batching{Size: 10, Tumbling: time.Minute})
	b, pos := mustBatch(t, r)
	if len(b.Records) != 3 || b.Window != w0 || pos != "0002" {
		t.Errorf("first batch %v window %d at %s", seqs(b.Records), b.Window, pos)
	}
	b, pos = mustBatch(t, r)
	if len(b.Records) != 2 || b.Window != w0+minute || pos != "0004" {
		t.Errorf("second batch %v window %d at %s", seqs(b.Records), b.Window, pos)
	}
}

// Once a tumbling window has ended on the wall clock (and the grace
// passed), the reader hands on an empty batch for the operator to close
// it, at the last position read.
func TestWindowEndTick(t *testing.T) {
	const minute = int64(60_000)
	w0 := base - base%minute
	now := time.UnixMilli(w0 + 30_000)
	cfg := &Batching{Size: 10, Tumbling: time.Minute, now: func() time.Time { return now }}
	r := &batchReader{cfg: cfg, shard: "shard-0", lastPos: "0007", handed: "0007", buf: make([]sources.Record, 10)}
	d, ok := r.deadline()
	if want := time.UnixMilli(w0 + minute).Add(windowGrace); !ok || !d.Equal(want) {
		t.Fatalf("deadline %v, want the window's end plus grace %v", d, want)
	}
	if _, ok := r.cut(false); ok {
		t.Fatal("a batch before the window ended")
	}
	now = d
	rec, ok := r.cut(true)
	if !ok || len(rec.Value.(*Batch).Records) != 0 || rec.Position != "0007" {
		t.Fatalf("at the window's end: %+v, want an empty batch at 0007", rec)
	}
	if next, _ := r.deadline(); !next.Equal(d.Add(time.Minute)) {
		t.Errorf("next tick %v, want %v", next, d.Add(time.Minute))
	}
}
