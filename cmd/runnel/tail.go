package main

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"sort"
	"time"
)

func init() {
	register("tail", "print a stream's records", runTail)
}

func runTail(args []string) error {
	fs := newFlags("tail", "tail STREAM [--from trim_horizon|latest] [--follow] [--format text|json]", `
Prints the records of every shard of STREAM, one per line: the record's data, or with
--format json an object with shard, sequence_number, key, arrival and data (data_base64 in
its place when the data is not UTF-8; in text, such data prints as base64). A record the
Kinesis Producer Library aggregated is printed as its user records (with sub_sequence_number
in JSON), keeping those whose hash key lies in the shard's range, as the KCL does. Shards are read
in lineage order: a child shard after its parents. With --follow it keeps waiting for new
records until interrupted.`)
	server := addServerFlag(fs)
	from := fs.String("from", "trim_horizon", "where to start: trim_horizon or latest")
	follow := fs.Bool("follow", false, "keep waiting for new records")
	format := fs.String("format", "text", "text (data only) or json")
	pos, err := parseInterspersed(fs, args, 1, "STREAM")
	if err != nil {
		return err
	}
	if *from != "trim_horizon" && *from != "latest" {
		return fmt.Errorf("%w: --from must be trim_horizon or latest", errUsage)
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("%w: --format must be text or json", errUsage)
	}
	ctx, stop := untilInterrupted()
	defer stop()
	err = tail(newClient(*server).withContext(ctx), pos[0], *from, *follow, *format == "json")
	if ctx.Err() != nil {
		return nil // stopped by the user, what was read is printed
	}
	return err
}

type tailRecord struct {
	SequenceNumber string `json:"sequence_number"`
	Key            string `json:"key"`
	Arrival        string `json:"arrival"`
	Data           string `json:"data"`
	DataBase64     string `json:"data_base64"`
}

type tailRead struct {
	Records      []tailRecord `json:"records"`
	NextPosition uint64       `json:"next_position"`
	EndOfShard   bool         `json:"end_of_shard"`
	ChildShards  []string     `json:"child_shards"`
}

// tail reads shards round-robin. A shard with parents starts only once all
// its parents have ended, so records of a key come out in order.
func tail(c *client, stream, from string, follow, asJSON bool) error {
	var sv streamView
	if err := c.do("GET", "/api/v1/streams/"+url.PathEscape(stream), nil, &sv); err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	ranges := newTailRanges(c, &sv)
	parents := map[string][]string{}
	type cursor struct {
		pos     string // query for the next read
		started bool
	}
	cursors := map[string]*cursor{}
	ended := map[string]bool{}
	for _, sh := range sv.Shards {
		var ps []string
		if sh.Parent != "" {
			ps = append(ps, sh.Parent)
		}
		if sh.AdjacentParent != "" {
			ps = append(ps, sh.AdjacentParent)
		}
		parents[sh.ID] = ps
		start := "from=" + from
		if from == "latest" && !sh.Open {
			ended[sh.ID] = true
			continue
		}
		cursors[sh.ID] = &cursor{pos: start}
	}
	ready := func(id string) bool {
		for _, p := range parents[id] {
			if _, known := parents[p]; known && !ended[p] {
				return false
			}
		}
		return true
	}
	for {
		ids := make([]string, 0, len(cursors))
		for id := range cursors {
			if !ended[id] && ready(id) {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		if len(ids) == 0 {
			return nil
		}
		progress := false
		for _, id := range ids {
			cur := cursors[id]
			wait := ""
			if follow && len(ids) == 1 {
				wait = "&wait=5s"
			}
			var r tailRead
			if err := c.do("GET", "/api/v1/streams/"+url.PathEscape(stream)+"/records?shard="+id+"&"+cur.pos+wait, nil, &r); err != nil {
				return err
			}
			cur.pos = fmt.Sprintf("position=%d", r.NextPosition)
			for _, rec := range r.Records {
				progress = true
				if err := printTailRecord(out, ranges, id, rec, asJSON); err != nil {
					return err
				}
			}
			if r.EndOfShard {
				ended[id] = true
				progress = true
				for _, ch := range r.ChildShards {
					if _, ok := cursors[ch]; !ok {
						cursors[ch] = &cursor{pos: "from=trim_horizon"}
						parents[ch] = append(parents[ch], id)
					}
				}
			}
		}
		out.Flush()
		if !progress && !follow {
			return nil
		}
		if !progress && follow && len(ids) > 1 {
			// Several shards caught up: the REST API waits on one shard
			// per request, so a CLI following many shards polls gently.
			time.Sleep(250 * time.Millisecond)
		}
	}
}
