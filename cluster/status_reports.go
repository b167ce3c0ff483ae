package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/internal/apitime"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StatusTopic is the compacted topic where each worker keeps its report:
// the rebalances it took part in, keyed "<job>/<worker>". Any worker reads
// every report, so any worker shows the job's rebalance history, also
// those before it started.
const StatusTopic = "runnel.status"

// maxRebalances bounds the rebalances a report keeps and a Status shows.
const maxRebalances = 32

// report is one worker's value in the status topic.
type report struct {
	Job        string      `json:"job"`
	Worker     string      `json:"worker"`
	At         time.Time   `json:"at"`
	Rebalances []Rebalance `json:"rebalances"`
	Failures   []Failure   `json:"failures,omitempty"`
}

// reports holds the latest report of every worker, read from the status
// topic.
type reports struct {
	mu    sync.Mutex
	byKey map[string]report
}

func (r *reports) put(key string, rep *report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byKey == nil {
		r.byKey = map[string]report{}
	}
	if rep == nil {
		delete(r.byKey, key)
		return
	}
	r.byKey[key] = *rep
}

// rebalances merges the job's reports: one entry per generation (the
// first report of it), the latest maxRebalances, oldest first.
func (r *reports) rebalances(job string) []Rebalance {
	r.mu.Lock()
	byGen := map[int32]Rebalance{}
	for _, rep := range r.byKey {
		if rep.Job != job {
			continue
		}
		for _, rb := range rep.Rebalances {
			if old, ok := byGen[rb.Generation]; !ok || time.Time(rb.At).Before(time.Time(old.At)) {
				byGen[rb.Generation] = rb
			}
		}
	}
	r.mu.Unlock()
	out := make([]Rebalance, 0, len(byGen))
	for _, rb := range byGen {
		out = append(out, rb)
	}
	slices.SortFunc(out, func(a, b Rebalance) int { return int(a.Generation - b.Generation) })
	for i := 1; i < len(out); i++ {
		if out[i].Before == nil && out[i-1].Generation == out[i].Generation-1 {
			out[i].Before = out[i-1].After
		}
	}
	if len(out) > maxRebalances {
		out = out[len(out)-maxRebalances:]
	}
	return out
}

// noteGeneration is called by the loop after each transaction: a new
// group generation is a rebalance the worker took part in, which the
// status goroutine records.
func (w *Worker) noteGeneration() {
	w.cfg.Metrics.owned(w)
	_, gen := w.sess.Client().GroupMetadata()
	if gen <= 0 || gen == w.gen {
		return
	}
	w.gen = gen
	w.cfg.Metrics.rebalanced(w.cfg.Spec.Name)
	select {
	case w.gens <- rebalanceSeen{gen, time.Now().UTC()}:
	default: // the status goroutine is behind: it records the next one
	}
}

type rebalanceSeen struct {
	gen int32
	at  time.Time
}

// runStatus runs the worker's status goroutines until ctx ends: one reads
// the status topic into w.reports, one records the rebalances the loop
// sees and writes the worker's report. Failures are logged: the job runs
// on without its status.
func (w *Worker) runStatus(ctx context.Context, admin *kadm.Client) (wait func()) {
	var wg sync.WaitGroup
	compact := "compact"
	resp, err := admin.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, StatusTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		w.cfg.Log.Error("worker status: cannot create the status topic; the job's rebalances are not shown", "topic", StatusTopic, "err", err)
		return wg.Wait
	}
	cl, err := kgo.NewClient(append(slices.Clone(w.opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{StatusTopic: {0: kgo.NewOffset().AtStart()}}))...)
	if err != nil {
		w.cfg.Log.Error("worker status: cannot connect", "err", err)
		return wg.Wait
	}
	// The report this worker wrote in an earlier life (its rebalances and
	// failures) is carried over, so it is read before the first report is
	// written: up to the topic's end as it is now.
	caughtUp := make(chan struct{})
	var once sync.Once
	markCaughtUp := func() { once.Do(func() { close(caughtUp) }) }
	end := int64(0)
	if ends, err := admin.ListEndOffsets(ctx, StatusTopic); err != nil {
		w.cfg.Log.Error("worker status: cannot find the status topic's end; this worker's earlier failures may not be shown", "err", err)
	} else if o, ok := ends.Lookup(StatusTopic, 0); ok && o.Err == nil {
		end = o.Offset
	}
	if end <= 0 {
		markCaughtUp()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset >= end-1 {
					defer markCaughtUp()
				}
				if r.Value == nil {
					w.reports.put(string(r.Key), nil)
					return
				}
				var rep report
				if err := json.Unmarshal(r.Value, &rep); err != nil {
					w.cfg.Log.Error("worker status: bad report in the status topic", "key", string(r.Key), "offset", r.Offset, "err", err)
					return
				}
				w.reports.put(string(r.Key), &rep)
			})
		}
	}()
	go func() {
		defer wg.Done()
		key := w.cfg.Spec.Name + "/" + w.cfg.ID
		rep := report{Job: w.cfg.Spec.Name, Worker: w.cfg.ID}
		select {
		case <-caughtUp:
		case <-ctx.Done():
			return
		case <-time.After(lagTimeout):
			w.cfg.Log.Error("worker status: the status topic was not read in time; this worker's earlier rebalances and failures are not carried over", "topic", StatusTopic, "waited", lagTimeout)
		}
		w.reports.mu.Lock()
		if old, ok := w.reports.byKey[key]; ok {
			rep.Rebalances = old.Rebalances
			w.failures.seed(old.Failures)
		}
		w.reports.mu.Unlock()
		var before []string
		for {
			var seen rebalanceSeen
			select {
			case <-ctx.Done():
				return
			case seen = <-w.gens:
			case <-w.failures.changed:
			}
			if seen.gen != 0 {
				dctx, cancel := context.WithTimeout(ctx, lagTimeout)
				after, err := memberIDs(dctx, admin, w.cfg.Spec.Name)
				cancel()
				if err != nil {
					w.cfg.Log.Error("worker status: cannot describe the group after a rebalance", "generation", seen.gen, "err", err)
				}
				rep.Rebalances = append(rep.Rebalances, Rebalance{Generation: seen.gen, At: apitime.Time(seen.at), Before: before, After: after, Reporter: w.cfg.ID})
				if len(rep.Rebalances) > maxRebalances {
					rep.Rebalances = slices.Delete(rep.Rebalances, 0, len(rep.Rebalances)-maxRebalances)
				}
				before = after
			}
			rep.Failures = w.failures.snapshot()
			rep.At = time.Now().UTC()
			b, _ := json.Marshal(rep)
			pctx, cancel := context.WithTimeout(ctx, lagTimeout)
			err := cl.ProduceSync(pctx, &kgo.Record{Topic: StatusTopic, Partition: 0, Key: []byte(key), Value: b}).FirstErr()
			cancel()
			if err != nil && ctx.Err() == nil {
				w.cfg.Log.Error("worker status: cannot write the worker's report", "topic", StatusTopic, "err", err)
			}
		}
	}()
	return wg.Wait
}

// failuresOf returns a worker's latest failures: this worker's own list,
// another's from its report in the status topic. Never nil, so the API
// shows an empty list.
func (w *Worker) failuresOf(id string) []Failure {
	var out []Failure
	if id == w.cfg.ID {
		out = w.failures.snapshot()
	} else {
		w.reports.mu.Lock()
		if rep, ok := w.reports.byKey[w.cfg.Spec.Name+"/"+id]; ok {
			out = slices.Clone(rep.Failures)
		}
		w.reports.mu.Unlock()
	}
	if out == nil {
		out = []Failure{}
	}
	return out
}
