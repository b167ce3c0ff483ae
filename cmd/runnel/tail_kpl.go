package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/kpl"
)

// tailRanges knows each shard's hash-key range, so that tail keeps only the
// user records of a KPL aggregated record that belong to the shard, as the
// KCL does.
type tailRanges struct {
	c      *client
	stream string
	ranges map[string]streams.HashRange
}

func newTailRanges(c *client, sv *streamView) *tailRanges {
	r := &tailRanges{c: c, stream: sv.Name, ranges: map[string]streams.HashRange{}}
	r.add(sv)
	return r
}

func (r *tailRanges) add(sv *streamView) {
	for _, sh := range sv.Shards {
		start, err1 := streams.ParseHashKey(sh.HashKeyStart)
		end, err2 := streams.ParseHashKey(sh.HashKeyEnd)
		if err1 == nil && err2 == nil {
			r.ranges[sh.ID] = streams.HashRange{Start: start, End: end}
		}
	}
}

// of returns shard's range, describing the stream again for a shard
// created since tail started.
func (r *tailRanges) of(shard string) (streams.HashRange, error) {
	if hr, ok := r.ranges[shard]; ok {
		return hr, nil
	}
	var sv streamView
	if err := r.c.do("GET", "/api/v1/streams/"+url.PathEscape(r.stream), nil, &sv); err != nil {
		return streams.HashRange{}, err
	}
	r.add(&sv)
	hr, ok := r.ranges[shard]
	if !ok {
		return streams.HashRange{}, fmt.Errorf("shard %s has no hash-key range in the stream's description", shard)
	}
	return hr, nil
}

// printTailRecord prints rec, or the user records it aggregates. A record
// that carries the KPL magic and digest but cannot be decoded is printed
// whole, with an error on stderr naming it.
func printTailRecord(out *bufio.Writer, ranges *tailRanges, shard string, rec tailRecord, asJSON bool) error {
	var users []kpl.UserRecord
	if rec.DataBase64 != "" {
		raw, err := base64.StdEncoding.DecodeString(rec.DataBase64)
		if err != nil {
			return fmt.Errorf("shard %s record %s: data_base64: %w", shard, rec.SequenceNumber, err)
		}
		recs, ok, err := kpl.Deaggregate(raw)
		switch {
		case err != nil:
			fmt.Fprintf(os.Stderr, "runnel tail: ERROR shard %s record %s: %v; printing it whole\n", shard, rec.SequenceNumber, err)
		case ok:
			hr, err := ranges.of(shard)
			if err != nil {
				return err
			}
			if users, err = kpl.Filter(recs, hr); err != nil {
				return fmt.Errorf("shard %s record %s: %w", shard, rec.SequenceNumber, err)
			}
			if users == nil {
				users = []kpl.UserRecord{} // aggregated, but nothing of this shard's
			}
		}
	}
	if users == nil {
		m := map[string]any{"shard": shard, "sequence_number": rec.SequenceNumber, "key": rec.Key, "arrival": rec.Arrival}
		if rec.DataBase64 != "" {
			m["data_base64"] = rec.DataBase64
		} else {
			m["data"] = rec.Data
		}
		printTailLine(out, asJSON, m)
		return nil
	}
	for _, u := range users {
		m := map[string]any{"shard": shard, "sequence_number": rec.SequenceNumber, "sub_sequence_number": u.SubSequence,
			"key": u.PartitionKey, "arrival": rec.Arrival}
		if u.ExplicitHashKey != "" {
			m["explicit_hash_key"] = u.ExplicitHashKey
		}
		if utf8.Valid(u.Data) {
			m["data"] = string(u.Data)
		} else {
			m["data_base64"] = base64.StdEncoding.EncodeToString(u.Data)
		}
		printTailLine(out, asJSON, m)
	}
	return nil
}

func printTailLine(out *bufio.Writer, asJSON bool, m map[string]any) {
	switch {
	case asJSON:
		b, _ := json.Marshal(m)
		out.Write(append(b, '\n'))
	case m["data_base64"] != nil:
		fmt.Fprintln(out, m["data_base64"])
	default:
		fmt.Fprintln(out, strings.TrimRight(m["data"].(string), "\n"))
	}
}
