package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// storedLease is a lease as the store keeps it.
type storedLease struct {
	epoch uint64
	cp    checkpoint
}

// storedLeases reads the group's leases from the server's consumer-groups
// API, or from the PostgreSQL table when pool is set.
func (c *chaos) storedLeases(pool *pgxpool.Pool) (map[string]storedLease, error) {
	out := map[string]storedLease{}
	if pool != nil {
		rows, err := pool.Query(context.Background(), `SELECT shard, epoch, sequence_number, sub_sequence_number
FROM runnel_consumer_leases WHERE stream = 's' AND group_name = $1`, chaosGroupName)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var shard, seq string
			var epoch, sub int64
			if err := rows.Scan(&shard, &epoch, &seq, &sub); err != nil {
				return nil, err
			}
			out[shard] = storedLease{uint64(epoch), checkpoint{SequenceNumber: seq, SubSequenceNumber: uint64(sub)}}
		}
		return out, rows.Err()
	}
	resp, err := http.Get(c.srv.URL + "/api/v1/streams/s/consumer-groups/" + chaosGroupName)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return out, nil // no worker synced yet
	}
	var g struct {
		Leases []struct {
			Shard    string `json:"shard"`
			Epoch    uint64 `json:"epoch"`
			Seq      string `json:"sequence_number"`
			Sub      uint64 `json:"sub_sequence_number"`
			Finished bool   `json:"finished"`
		} `json:"leases"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil {
		return nil, fmt.Errorf("GET group: %d: %w", resp.StatusCode, err)
	}
	for _, l := range g.Leases {
		out[l.Shard] = storedLease{l.Epoch, checkpoint{SequenceNumber: l.Seq, SubSequenceNumber: l.Sub}}
	}
	return out, nil
}

// observe reads the stored leases and checks that no epoch and no
// checkpoint went back since the last look.
func (c *chaos) observe() {
	now, err := c.storedLeases(c.pool)
	if err != nil {
		c.action("read stored leases: %v", err) // the server may be restarting
		return
	}
	for shard, l := range now {
		prev, ok := c.seen[shard]
		if !ok {
			continue
		}
		if l.epoch < prev.epoch {
			c.problems = append(c.problems, fmt.Sprintf("stored epoch of %s went back from %d to %d", shard, prev.epoch, l.epoch))
		}
		if cmpPos(l.cp, prev.cp) < 0 {
			c.problems = append(c.problems, fmt.Sprintf("stored checkpoint of %s went back from %s to %s", shard, posString(prev.cp), posString(l.cp)))
		}
	}
	c.seen = now
}

// cmpPos orders positions in a shard; SHARD_END is after every record,
// no checkpoint before every record.
func cmpPos(a, b checkpoint) int {
	rank := func(c checkpoint) int {
		switch c.SequenceNumber {
		case "":
			return 0
		case consumergroups.ShardEnd:
			return 2
		}
		return 1
	}
	if ra, rb := rank(a), rank(b); ra != rb || ra != 1 {
		return ra - rb
	}
	if la, lb := len(a.SequenceNumber), len(b.SequenceNumber); la != lb {
		return la - lb // decimal, no leading zeros
	}
	if d := strings.Compare(a.SequenceNumber, b.SequenceNumber); d != 0 {
		return d
	}
	switch {
	case a.SubSequenceNumber < b.SubSequenceNumber:
		return -1
	case a.SubSequenceNumber > b.SubSequenceNumber:
		return 1
	}
	return 0
}

func posString(c checkpoint) string {
	if c.SequenceNumber == "" {
		return "none"
	}
	return fmt.Sprintf("%s/%d", c.SequenceNumber, c.SubSequenceNumber)
}

func (r chaosRec) pos() checkpoint {
	return checkpoint{SequenceNumber: r.seq, SubSequenceNumber: r.sub}
}

// check checks the contract on the log.
func (c *chaos) check() {
	c.mu.Lock()
	events := slices.Clone(c.events)
	problems := append(slices.Clone(c.problems), c.overlaps...)
	c.mu.Unlock()
	problems = append(problems, c.checkAllHanded(events)...)
	problems = append(problems, checkOrder(events)...)
	redelivered, ps := checkRedelivery(events)
	problems = append(problems, ps...)
	problems = append(problems, checkStored(events)...)
	problems = append(problems, checkFencing(events)...)
	deliveries, actions := 0, 0
	for _, e := range events {
		switch e.kind {
		case "deliver":
			deliveries += len(e.recs)
		case "action":
			actions++
		}
	}
	c.t.Logf("%d records put, %d handed (%d batches logged in %d events, %d actions); handed again: %v",
		len(c.put), deliveries, c.calls, len(events), actions, redelivered)
	if len(problems) > 50 {
		problems = append(problems[:50], fmt.Sprintf("... and %d more", len(problems)-50))
	}
	if len(problems) > 0 {
		c.fail(problems...)
	}
	if *chaosLog {
		file, _ := c.writeLog()
		c.t.Logf("the whole log is in %s", file)
	}
}

// checkAllHanded: every record put was handed at least once.
func (c *chaos) checkAllHanded(events []chaosEvent) []string {
	got := map[string]bool{}
	for _, e := range events {
		for _, r := range e.recs {
			got[r.id()] = true
		}
	}
	var want, have []string
	for _, r := range c.put {
		want = append(want, r.id())
		if got[r.id()] {
			have = append(have, r.id())
		}
	}
	if len(want) == len(have) {
		return nil
	}
	return []string{"records put (-) but never handed:\n" + testutil.Diff(want, have)}
}

// checkOrder: each worker hands a key's records in put order, going back
// only to records handed before (a re-delivery); and the first deliveries
// of a key's records come in put order.
func checkOrder(events []chaosEvent) []string {
	var problems []string
	last := map[string]map[string]int{} // worker → key → last number handed
	seen := map[string]bool{}
	firstNext := map[string]int{} // key → the number whose first delivery is due
	for i, e := range events {
		if e.kind != "deliver" {
			continue
		}
		if last[e.worker] == nil {
			last[e.worker] = map[string]int{}
		}
		for _, r := range e.recs {
			l, ok := last[e.worker][r.key]
			if !ok {
				l = -1
			}
			if r.n <= l && !seen[r.id()] {
				problems = append(problems, fmt.Sprintf("event %d: %s handed %s after %s/%d, and %s was not handed before", i, e.worker, r.id(), r.key, l, r.id()))
			}
			for m := l + 1; m < r.n; m++ {
				if id := fmt.Sprintf("%s/%d", r.key, m); !seen[id] {
					problems = append(problems, fmt.Sprintf("event %d: %s handed %s before %s was handed by anyone", i, e.worker, r.id(), id))
					break
				}
			}
			last[e.worker][r.key] = r.n
			if !seen[r.id()] {
				if r.n != firstNext[r.key] {
					problems = append(problems, fmt.Sprintf("event %d: %s first handed while %s/%d was not yet", i, r.id(), r.key, firstNext[r.key]))
				}
				firstNext[r.key] = max(firstNext[r.key], r.n+1)
			}
			seen[r.id()] = true
		}
	}
	return problems
}

type delivery struct {
	ev   int
	e    *chaosEvent
	rec  chaosRec
	call int
}

// checkRedelivery: a record is handed again only when no stored
// checkpoint covered it, and only after the batch it was last handed in
// failed in the handler or its checkpoint (or release) failed. It
// returns the re-deliveries by cause.
func checkRedelivery(events []chaosEvent) (map[string]int, []string) {
	var problems []string
	causes := map[string]int{}
	by := map[string][]delivery{}
	var ids []string
	stored := map[string][]int{} // shard → events that stored a checkpoint
	for i := range events {
		e := &events[i]
		switch {
		case e.kind == "deliver":
			for _, r := range e.recs {
				if by[r.id()] == nil {
					ids = append(ids, r.id())
				}
				by[r.id()] = append(by[r.id()], delivery{ev: i, e: e, rec: r, call: e.call})
			}
		case (e.kind == "checkpoint" || e.kind == "release") && e.err == "" && e.pos != nil:
			stored[e.shard] = append(stored[e.shard], i)
		}
	}
	for _, id := range ids {
		ds := by[id]
		for k := 1; k < len(ds); k++ {
			prev, cur := ds[k-1], ds[k]
			for _, j := range stored[cur.rec.shard] {
				if j < cur.ev && cmpPos(*events[j].pos, cur.rec.pos()) >= 0 {
					problems = append(problems, fmt.Sprintf("event %d: %s handed again by %s though event %d stored a checkpoint covering it", cur.ev, id, cur.e.worker, j))
					break
				}
			}
			// The outcome of the batch prev was in: the handler failed it,
			// or the store call after it (perhaps after cur: a stalled
			// handler) failed or stored it.
			cause := ""
		outcome:
			for j := prev.ev + 1; j < len(events); j++ {
				e := events[j]
				switch {
				case e.kind == "handler-error" && e.call == prev.call:
					cause = "handler error"
					break outcome
				case (e.kind == "checkpoint" || e.kind == "release") && e.worker == prev.e.worker && e.shard == prev.rec.shard:
					if e.err == "" && e.pos != nil && cmpPos(*e.pos, prev.rec.pos()) >= 0 {
						problems = append(problems, fmt.Sprintf("event %d: %s handed again by %s though event %d checkpointed the batch %s handed it in (event %d)",
							cur.ev, id, cur.e.worker, j, prev.e.worker, prev.ev))
						cause = "checkpointed"
					} else if e.err != "" {
						cause = failureCause(events[:j], e)
					}
					break outcome
				}
			}
			if cause == "" {
				problems = append(problems, fmt.Sprintf("event %d: %s handed again by %s with no cause since %s handed it at event %d", cur.ev, id, cur.e.worker, prev.e.worker, prev.ev))
				continue
			}
			causes[cause]++
		}
	}
	return causes, problems
}

// failureCause names why the store call e failed: its worker killed or
// cut off, the lease lost, the reader stopped with the batch in hand (its
// worker learnt the lease was lost, or a graceful stop timed out), or
// another error (such as the server restarting).
func failureCause(before []chaosEvent, e chaosEvent) string {
	fault, recent := "", false // the worker's last fault, and whether it came lately
	for j := len(before) - 1; j >= 0; j-- {
		if b := before[j]; b.kind == "action" && b.worker == e.worker && b.fault != "" {
			fault, recent = b.fault, e.at-b.at <= 4*chaosLease
			break
		}
	}
	switch {
	case e.err == errCut.Error():
		if fault == "" {
			return "cut (no action?)"
		}
		return fault
	case e.lost:
		return "lease lost"
	case strings.Contains(e.err, context.Canceled.Error()) && recent:
		return fault + ", then the reader stopped mid-batch"
	case strings.Contains(e.err, context.Canceled.Error()):
		return "reader stopped mid-batch"
	}
	return e.kind + " failed: " + e.err
}

// checkStored: the checkpoints stored (as the log saw them) never go
// back within a shard, nor come from an older epoch, and none follows
// SHARD_END.
func checkStored(events []chaosEvent) []string {
	var problems []string
	type last struct {
		ev    int
		epoch uint64
		pos   checkpoint
	}
	lasts := map[string]last{}
	for i, e := range events {
		if (e.kind != "checkpoint" && e.kind != "release") || e.err != "" || e.pos == nil {
			continue
		}
		l, ok := lasts[e.shard]
		if ok && (cmpPos(*e.pos, l.pos) < 0 || e.epoch < l.epoch || l.pos.SequenceNumber == consumergroups.ShardEnd) {
			problems = append(problems, fmt.Sprintf("event %d: %s stored %s@%d %s after event %d stored %s at epoch %d",
				i, e.worker, e.shard, e.epoch, posString(*e.pos), l.ev, posString(l.pos), l.epoch))
		}
		lasts[e.shard] = last{i, e.epoch, *e.pos}
	}
	return problems
}

// checkFencing: once a shard was handed at an epoch, no worker hands it at
// an older one, and an epoch is one worker's.
func checkFencing(events []chaosEvent) []string {
	var problems []string
	type top struct {
		ev     int
		epoch  uint64
		worker string
	}
	tops := map[string]top{}
	for i, e := range events {
		if e.kind != "deliver" {
			continue
		}
		t, ok := tops[e.shard]
		switch {
		case e.epoch == 0:
			problems = append(problems, fmt.Sprintf("event %d: %s handed %s with no lease on it by its last Sync", i, e.worker, e.shard))
		case ok && e.epoch < t.epoch:
			problems = append(problems, fmt.Sprintf("event %d: %s handed %s at epoch %d after %s handed it at epoch %d (event %d)", i, e.worker, e.shard, e.epoch, t.worker, t.epoch, t.ev))
		case ok && e.epoch == t.epoch && e.worker != t.worker:
			problems = append(problems, fmt.Sprintf("event %d: %s and %s both handed %s at epoch %d", i, e.worker, t.worker, e.shard, e.epoch))
		}
		if !ok || e.epoch >= t.epoch {
			tops[e.shard] = top{i, e.epoch, e.worker}
		}
	}
	return problems
}
