package engine

import "testing"

func TestTracker(t *testing.T) {
	type step struct {
		op   string // update, idle, end, open
		id   string
		wm   int64
		want int64
	}
	cases := map[string]struct {
		initial []string
		steps   []step
	}{
		"minimum over inputs": {[]string{"a", "b"}, []step{
			{"update", "a", 500, NoWatermark},
			{"update", "b", 300, 300},
			{"update", "b", 900, 500},
		}},
		"never goes backwards": {[]string{"a"}, []step{
			{"update", "a", 500, 500},
			{"open", "c", 100, 500},
		}},
		"ended input is +inf, all ended is EndOfTime": {[]string{"a", "b"}, []step{
			{"update", "a", 10, NoWatermark},
			{"end", "b", 0, 10},
			{"end", "a", 0, EndOfTime},
		}},
		"idle input left out; all idle takes the largest": {[]string{"a", "b"}, []step{
			{"update", "a", 100, NoWatermark},
			{"update", "b", 50, 50},
			{"idle", "b", 0, 100},
			{"idle", "a", 0, 100},
			{"update", "b", 70, 100},
			{"update", "a", 400, 100},
			{"update", "b", 800, 400},
		}},
		"child registered by parent holds the mark": {[]string{"p"}, []step{
			{"update", "p", 1000, 1000},
			{"open", "c1", 1000, 1000},
			{"open", "c2", 1000, 1000},
			{"end", "p", 0, 1000},
			{"update", "c1", 5000, 1000},
			{"update", "c2", 2000, 2000},
		}},
	}
	for name, c := range cases {
		tr := newTracker(c.initial)
		for i, s := range c.steps {
			switch s.op {
			case "update":
				tr.update(s.id, s.wm)
			case "idle":
				tr.idle(s.id)
			case "end":
				tr.end(s.id)
			case "open":
				tr.open(s.id, s.wm)
			}
			if got := tr.current(); got != s.want {
				t.Errorf("%s: step %d (%s %s %d): watermark %d, want %d", name, i, s.op, s.id, s.wm, got, s.want)
			}
		}
	}
}

func TestShardWatermarkDoesNotOverflow(t *testing.T) {
	if got := shardWatermark(NoWatermark, 5000); got != NoWatermark {
		t.Errorf("no records: %d", got)
	}
	if got := shardWatermark(NoWatermark+10, 5000); got != NoWatermark {
		t.Errorf("near min: %d", got)
	}
	if got := shardWatermark(10_000, 5000); got != 5000 {
		t.Errorf("10000-5000: %d", got)
	}
}
