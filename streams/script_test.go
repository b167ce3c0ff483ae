package streams

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestScripts runs the data-driven scripts in testdata/
// (cockroachdb/datadriven): each block is a command, a line "----", and
// the expected output up to a blank line. Run with -rewrite to update the
// expected output after a deliberate change.
//
// Commands (the stream is always "s"; positions are counters):
//
//	open [segment=BYTES]            open the store (reopen: close first)
//	create shards=N [retention=H]   create the stream
//	put KEY=DATA ...                one put; "#HASH" after KEY gives an explicit hash key
//	read SHARD FROM [limit=N] [bytes=N]
//	seek SHARD TYPE [seq=COUNTER@SHARD] [at=SECONDS]   AT_TIMESTAMP at clock start + SECONDS
//	split SHARD KEY | merge A B | count N
//	describe
//	clock +DURATION | retention
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		checkGoroutines(t)
		c := newClock()
		env := &scriptEnv{t: t, fs: vfs.NewMem(), clock: c, start: c.t}
		defer func() {
			if env.s != nil {
				env.s.Close()
			}
		}()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if out := strings.TrimRight(env.run(d.FullCmd()), "\n"); out != "" {
				return out + "\n"
			}
			return ""
		})
	})
}

type scriptEnv struct {
	t     *testing.T
	fs    vfs.FS
	clock *clock
	start time.Time
	s     *Store
	seg   int64
}

func (e *scriptEnv) run(line string) string {
	f := strings.Fields(line)
	args := map[string]string{}
	var pos []string
	for _, a := range f[1:] {
		if k, v, ok := strings.Cut(a, "="); ok && f[0] != "put" {
			args[k] = v
		} else {
			pos = append(pos, a)
		}
	}
	num := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			e.t.Fatalf("%q: %q is not a number", line, s)
		}
		return n
	}
	shard := func(i int) string { return ShardID(num(pos[i])) }
	errOut := func(err error) string { return "error: " + err.Error() }
	switch f[0] {
	case "open":
		if e.s != nil {
			e.s.Close()
		}
		if v, ok := args["segment"]; ok {
			e.seg = int64(num(v))
		}
		s, err := Open(memDir, Options{FS: e.fs, Logger: quietLogger(), Now: e.clock.now, SegmentBytes: e.seg, SegmentAge: time.Hour})
		if err != nil {
			return errOut(err)
		}
		e.s = s
		return "ok"
	case "create":
		o := CreateOptions{}
		if v, ok := args["retention"]; ok {
			o.RetentionHours = num(v)
		}
		if _, err := e.s.CreateStream("s", num(args["shards"]), o); err != nil {
			return errOut(err)
		}
		return e.describe()
	case "put":
		var recs []PutRecord
		for _, p := range pos {
			k, d, _ := strings.Cut(p, "=")
			r := PutRecord{PartitionKey: k, Data: []byte(d)}
			if k, h, ok := strings.Cut(k, "#"); ok {
				r.PartitionKey, r.ExplicitHashKey = k, h
			}
			if r.PartitionKey == "-" {
				r.PartitionKey = ""
			}
			recs = append(recs, r)
		}
		res, err := e.s.Put(context.Background(), "s", recs)
		if err != nil {
			return errOut(err)
		}
		var b strings.Builder
		for i, r := range res {
			fmt.Fprintf(&b, "%s -> %s %d\n", recs[i].Data, r.ShardID, r.Seq)
		}
		return b.String()
	case "read":
		limit, bytes := 0, 0
		if v, ok := args["limit"]; ok {
			limit = num(v)
		}
		if v, ok := args["bytes"]; ok {
			bytes = num(v)
		}
		r, err := e.s.Read("s", shard(0), uint64(num(pos[1])), limit, bytes)
		if err != nil {
			return errOut(err)
		}
		var b strings.Builder
		for _, rec := range r.Records {
			fmt.Fprintf(&b, "%d %s=%s at +%ds\n", rec.Seq, rec.PartitionKey, rec.Data, (rec.Arrival-e.start.UnixMilli())/1000)
		}
		fmt.Fprintf(&b, "next %d, %d ms behind", r.Next, r.MillisBehind)
		if r.EndOfShard {
			fmt.Fprintf(&b, ", end of shard, children %v", r.Children)
		}
		return b.String()
	case "seek":
		seq := ""
		if v, ok := args["seq"]; ok {
			c, sh, _ := strings.Cut(v, "@")
			seq = FormatSeq(seqTag(e.t, e.s, "s"), num(sh), uint64(num(c)))
		}
		var ts time.Time
		if v, ok := args["at"]; ok {
			ts = e.start.Add(time.Duration(num(v)) * time.Second)
		}
		p, err := e.s.Seek("s", shard(0), IteratorType(pos[1]), seq, ts)
		if err != nil {
			// The stream's sequence tag is random: shown as <tag>.
			return strings.Replace(errOut(err), fmt.Sprintf("%012d", seqTag(e.t, e.s, "s")), "<tag>", 1)
		}
		return fmt.Sprint(p)
	case "split", "merge", "count":
		var err error
		switch f[0] {
		case "split":
			err = e.s.SplitShard("s", shard(0), pos[1])
		case "merge":
			err = e.s.MergeShards("s", shard(0), shard(1))
		case "count":
			err = e.s.UpdateShardCount("s", num(pos[0]))
		}
		if err != nil {
			return errOut(err)
		}
		return e.describe()
	case "describe":
		return e.describe()
	case "clock":
		d, err := time.ParseDuration(strings.TrimPrefix(pos[0], "+"))
		if err != nil {
			e.t.Fatalf("%q: %v", line, err)
		}
		e.clock.add(d)
		return fmt.Sprintf("+%ds", int(e.clock.t.Sub(e.start).Seconds()))
	case "retention":
		e.s.EnforceRetention()
		return e.describe()
	}
	e.t.Fatalf("unknown command %q", line)
	return ""
}

// describe prints one line per shard: state, hash range, trim horizon,
// last counter and lineage.
func (e *scriptEnv) describe() string {
	in, err := e.s.DescribeStream("s")
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, sh := range in.Shards {
		state := "open"
		if !sh.Open {
			state = fmt.Sprintf("closed at %d", sh.EndingSeq)
		}
		fmt.Fprintf(&b, "%s %s [%s, %s] trim %d last %d", sh.ID, state, sh.Range.Start, sh.Range.End, sh.TrimSeq, sh.LastSeq)
		if sh.Parent != "" {
			fmt.Fprintf(&b, " parent %s", sh.Parent)
		}
		if sh.AdjacentParent != "" {
			fmt.Fprintf(&b, " adjacent %s", sh.AdjacentParent)
		}
		if len(sh.Children) > 0 {
			fmt.Fprintf(&b, " children %v", sh.Children)
		}
		b.WriteString("\n")
	}
	return b.String()
}
