package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sources"
)

// ctxFirstSource's readers, like the stream source's, give up before
// looking for records once the read's context is done.
type ctxFirstSource struct{ *chanSource }

func (s ctxFirstSource) Open(ctx context.Context, sh sources.Shard, after string) (sources.Reader, error) {
	r, err := s.chanSource.Open(ctx, sh, after)
	return ctxFirstReader{r}, err
}

type ctxFirstReader struct{ sources.Reader }

func (r ctxFirstReader) Read(ctx context.Context, buf []sources.Record) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return r.Reader.Read(ctx, buf)
}

// TestShardHeldBackIsNotIdle holds a shard task in its chain (as a sink
// that waits for its target holds every shard behind it) for longer than
// the idle timeout while its next record waits to be read. The shard is
// not idle: the watermark must not pass it by, and its waiting record
// must count in its window, not arrive late.
func TestShardHeldBackIsNotIdle(t *testing.T) {
	src := newChanSource("a", "b")
	sink := &collect{}
	g := windowGraph(ctxFirstSource{src}, sink, 1000)
	hold, held := make(chan struct{}), make(chan struct{})
	g.Nodes[1].New = newMap(func(r operators.Record) (operators.Record, bool) {
		if r.Value.(map[string]any)["k"] == "stall" {
			close(held)
			<-hold
		}
		return r, true
	})
	idle := 20 * time.Millisecond
	g.Sources[0].IdleTimeout = idle
	j, err := Start(context.Background(), g, Options{Parallelism: 1, BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	src.feed(t, "a", "x@100")
	// One record per read: b's task reads stall@150 and is held on it
	// with y@200 waiting.
	src.feed(t, "b", "stall@150", "y@200")
	<-held
	src.feed(t, "a", "x@5000")
	// Not a timed assertion: any hold longer than the idle timeout shows
	// the fault, and the results must not depend on how long it is.
	time.Sleep(10 * idle)
	close(hold)
	eventually(t, "b read y@200", func() bool {
		for _, sh := range j.Status().Shards {
			if sh.Shard == "b" && sh.Records == 2 {
				return true
			}
		}
		return false
	})
	close(src.ch["a"])
	close(src.ch["b"])
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	want := "0 stall 1 1,0 x 1 1,0 y 1 1,5000 x 1 1"
	if got := strings.Join(windowRows(sink.snapshot()), ","); got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
	if late := opsByID(j.Status())["win"].Late; late != 0 {
		t.Errorf("%d records late, want none: the held shard was counted idle", late)
	}
}
