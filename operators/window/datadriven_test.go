package window

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
)

// TestDataDriven runs the scripts in testdata/ (cockroachdb/datadriven:
// run with -rewrite to update the expected output). Each case is a command
// line, input lines, "----", and the expected output up to a blank line:
//
//	window tumbling|sliding|session DUR [every DUR] [lateness DUR] [instances N]
//	  input: one aggregate per line, name=expr
//	shards N bound DUR      automatic watermarks: min over shards of (max - bound)
//	process [shard=S]       input: "KEY T [field=value ...]" records
//	watermark T|auto        advance the watermark (auto: from the shards)
//	end shard=S             the shard is finished (counts as +inf)
//	stats
//
// Output lines: "KEY [START,END) name=value ..." for results, "late KEY T"
// for the late side output, "wm=T" for automatic watermarks.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{t: t}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var input []string
			if d.Input != "" {
				input = strings.Split(d.Input, "\n")
			}
			out := h.run(ddCase{cmd: d.FullCmd(), input: input})
			if len(out) == 0 {
				return ""
			}
			return strings.Join(out, "\n") + "\n"
		})
	})
}

// ddCase is one command of a script with its input lines.
type ddCase struct {
	cmd   string
	input []string
}

type harness struct {
	t       *testing.T
	ops     []*Operator
	shardWM []int64 // max event time per shard; MaxInt64 when ended
	bound   int64
	cur     *[]outLine // output of the running command
}

type outLine struct {
	late bool
	end  int64
	key  string
	beg  int64
	text string
}

type lateCollector struct{ h *harness }

func (c lateCollector) Emit(r operators.Record) {
	*c.h.cur = append(*c.h.cur, outLine{late: true, text: fmt.Sprintf("late %s %d", r.Key, r.EventTime)})
}

func (h *harness) run(c ddCase) []string {
	t := h.t
	f := strings.Fields(c.cmd)
	args := map[string]string{}
	for i := 1; i < len(f); i++ {
		if k, v, ok := strings.Cut(f[i], "="); ok {
			args[k] = v
		}
	}
	var lines []outLine
	h.cur = &lines
	results := resultCollector{lines: &lines, h: h}
	switch f[0] {
	case "window":
		cfg := Config{Job: "test", ID: "w"}
		instances := 1
		switch f[1] {
		case "tumbling":
			cfg.Kind, cfg.Size = Tumbling, dur(t, f[2])
		case "sliding":
			cfg.Kind, cfg.Size = Sliding, dur(t, f[2])
		case "session":
			cfg.Kind, cfg.Gap = Session, dur(t, f[2])
		}
		for i := 3; i+1 < len(f); i += 2 {
			switch f[i] {
			case "every":
				cfg.Every = dur(t, f[i+1])
			case "lateness":
				cfg.AllowedLateness = dur(t, f[i+1])
			case "instances":
				instances, _ = strconv.Atoi(f[i+1])
			}
		}
		for _, in := range c.input {
			name, expr, _ := strings.Cut(in, "=")
			s, err := aggregate.Parse(name, expr)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Aggregates = append(cfg.Aggregates, s)
		}
		comp, err := Compile(cfg)
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		h.ops = nil
		for range instances {
			op, err := comp.New()
			if err != nil {
				t.Fatal(err)
			}
			op.SetSideOutput(operators.LateOutput, lateCollector{h})
			h.ops = append(h.ops, op)
		}
		var names []string
		for _, col := range comp.ResultColumns() {
			names = append(names, col.Name+":"+string(col.Type))
		}
		return []string{"columns " + strings.Join(names, " ")}
	case "shards":
		n, _ := strconv.Atoi(f[1])
		h.shardWM = make([]int64, n)
		for i := range h.shardWM {
			h.shardWM[i] = math.MinInt64
		}
		h.bound = dur(t, f[3]).Milliseconds()
		return nil
	case "process":
		shard, _ := strconv.Atoi(args["shard"])
		batches := make([]operators.Batch, len(h.ops))
		for _, in := range c.input {
			r := parseRecord(t, in)
			r.Origin = fmt.Sprintf("shard-%d", shard)
			i := instanceOf(r.Key, len(h.ops))
			batches[i].Records = append(batches[i].Records, r)
			if h.shardWM != nil {
				h.shardWM[shard] = max(h.shardWM[shard], r.EventTime)
			}
		}
		for i, op := range h.ops {
			if len(batches[i].Records) > 0 {
				if err := op.Process(context.Background(), &batches[i], results); err != nil {
					return []string{"error: " + err.Error()}
				}
			}
		}
	case "end":
		shard, _ := strconv.Atoi(args["shard"])
		h.shardWM[shard] = math.MaxInt64
		return nil
	case "watermark":
		var wm int64
		if f[1] == "auto" {
			wm = math.MaxInt64
			for _, m := range h.shardWM {
				wm = min(wm, satSub(m, h.bound))
			}
			if m := slices.Min(h.shardWM); m == math.MaxInt64 {
				wm = math.MaxInt64
			}
			lines = append(lines, outLine{late: true, end: math.MinInt64, text: fmt.Sprintf("wm=%s", fmtTime(wm))})
		} else {
			wm = parseTime(t, f[1])
		}
		for _, op := range h.ops {
			if err := op.OnWatermark(context.Background(), wm, results); err != nil {
				return []string{"error: " + err.Error()}
			}
		}
	case "stats":
		var s Stats
		for _, op := range h.ops {
			st := op.Stats()
			s.In += st.In
			s.Late += st.Late
			s.LateWindows += st.LateWindows
			s.Fired += st.Fired
			s.Windows += st.Windows
		}
		return []string{fmt.Sprintf("in=%d late=%d late_windows=%d fired=%d windows=%d", s.In, s.Late, s.LateWindows, s.Fired, s.Windows)}
	default:
		t.Fatalf("unknown command %q", f[0])
	}
	// Several instances emit in their own order: put results in the order
	// one instance would use (end, key, start); other lines keep theirs.
	slices.SortStableFunc(lines, func(a, b outLine) int {
		if a.late || b.late {
			return 0
		}
		return cmp.Or(cmp.Compare(a.end, b.end), cmp.Compare(a.key, b.key), cmp.Compare(a.beg, b.beg))
	})
	var out []string
	for _, l := range lines {
		out = append(out, l.text)
	}
	return out
}

type resultCollector struct {
	lines *[]outLine
	h     *harness
}

func (c resultCollector) Emit(r operators.Record) {
	row := r.Value.(map[string]any)
	var b strings.Builder
	s, e := row["window_start"].(int64), row["window_end"].(int64)
	fmt.Fprintf(&b, "%s [%d,%d)", row["key"], s, e)
	for _, col := range c.h.ops[0].ResultColumns()[3:] {
		fmt.Fprintf(&b, " %s=%s", col.Name, fmtValue(row[col.Name]))
	}
	*c.lines = append(*c.lines, outLine{end: e, key: r.Key, beg: s, text: b.String()})
}

func fmtValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case float64:
		return strconv.FormatFloat(x, 'g', 6, 64)
	}
	return fmt.Sprint(v)
}

func fmtTime(t int64) string {
	switch t {
	case math.MaxInt64:
		return "+inf"
	case math.MinInt64:
		return "-inf"
	}
	return strconv.FormatInt(t, 10)
}

func instanceOf(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

func dur(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func parseTime(t *testing.T, s string) int64 {
	switch s {
	case "+inf":
		return math.MaxInt64
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func parseRecord(t *testing.T, line string) operators.Record {
	f := strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("record %q: want KEY T [field=value ...]", line)
	}
	val := map[string]any{}
	for _, kv := range f[2:] {
		k, v, _ := strings.Cut(kv, "=")
		if i, err := strconv.ParseInt(v, 10, 64); err == nil {
			val[k] = i
		} else if x, err := strconv.ParseFloat(v, 64); err == nil {
			val[k] = x
		} else {
			val[k] = v
		}
	}
	return operators.Record{Key: f[0], EventTime: parseTime(t, f[1]), Value: val}
}
