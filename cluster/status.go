package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/internal/apitime"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Status is the whole job as Kafka sees it, the same from any worker:
// which worker has which task, how far each task's input partition is
// behind, and the rebalances the workers took part in.
type Status struct {
	Job   string `json:"job"`
	Group string `json:"group"`
	// State is the group's (Stable, PreparingRebalance, Empty, ...).
	State   string         `json:"state"`
	Workers []WorkerStatus `json:"workers"`
	// Partitions are the input partitions of every stage with their owner
	// and lag, sorted by stage, topic and partition.
	Partitions []PartitionStatus `json:"partitions"`
	// Lag is the sum of the partitions' known lags.
	Lag        int64       `json:"lag"`
	Rebalances []Rebalance `json:"rebalances"`
	// Stages names each stage's input topic, in stage order.
	Stages []StageStatus `json:"stages"`
}

// StageStatus is one stage of the job.
type StageStatus struct {
	Index int      `json:"index"`
	Input []string `json:"input"`
	// Operators are the stage's operators, the keyed one first.
	Operators []string `json:"operators"`
}

// WorkerStatus is one member of the job's group.
type WorkerStatus struct {
	// ID is the worker's --id (from its Kafka client id).
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	Host     string `json:"host"`
	// Tasks are the worker's (stage, partition) tasks, by stage and name.
	Tasks []TaskRef `json:"tasks"`
	// Failures are the latest failures the worker survived (snapshot,
	// local state, Kinesis checkpoint), oldest first, from its report in
	// the status topic (or, for the worker answering, its own list).
	Failures []Failure `json:"failures"`
}

// TaskRef names a task: a stage and one of its input partitions.
type TaskRef struct {
	Stage     int    `json:"stage"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// PartitionStatus is one input partition of a stage.
type PartitionStatus struct {
	TaskRef
	// Worker owns the task ("" while no member has it).
	Worker string `json:"worker"`
	// Committed is the group's committed offset (-1: none yet), End the
	// partition's end offset, Lag their difference (-1: unknown, Error
	// says why).
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Error     string `json:"error,omitempty"`
}

// Rebalance is one generation of the job's group as a worker saw it when
// it joined that generation.
type Rebalance struct {
	Generation int32        `json:"generation"`
	At         apitime.Time `json:"at"`
	// Before and After are the group's workers in the generation before
	// (as the reporting worker last saw them) and in this one.
	Before []string `json:"before"`
	After  []string `json:"after"`
	// Reporter is the worker that recorded the rebalance.
	Reporter string `json:"reporter"`
}

// ErrNotStarted is returned by Worker.Status before the worker has
// connected to the cluster.
var ErrNotStarted = errors.New("cluster: the worker has not connected to the cluster yet")

// Status describes the whole job: the group's members and their tasks
// (Kafka's group description), each input partition's committed and end
// offsets, and the rebalances every worker of the job reported to the
// status topic.
func (w *Worker) Status(ctx context.Context) (*Status, error) {
	w.statusMu.Lock()
	admin := w.admin
	w.statusMu.Unlock()
	if admin == nil {
		return nil, ErrNotStarted
	}
	st := &Status{Job: w.cfg.Spec.Name, Group: GroupName(w.cfg.Spec.Name)}
	for _, s := range w.plan.Stages {
		ss := StageStatus{Index: s.Index, Operators: slices.Clone(s.Nodes)}
		if s.Index == 0 {
			ss.Input = slices.Clone(w.src.Config().Topics)
		} else {
			ss.Input = []string{s.Input}
		}
		st.Stages = append(st.Stages, ss)
	}
	lags, err := admin.Lag(ctx, st.Group)
	if err != nil {
		return nil, fmt.Errorf("cluster: describe group %s: %w", st.Group, err)
	}
	g, ok := lags[st.Group]
	if !ok {
		return nil, fmt.Errorf("cluster: describe group %s: no answer", st.Group)
	}
	if err := g.Error(); err != nil {
		return nil, fmt.Errorf("cluster: describe group %s: %w", st.Group, err)
	}
	st.State = g.State
	owner := map[tp]string{}
	for _, m := range g.Members {
		ws := WorkerStatus{ID: workerOf(st.Job, m.ClientID), ClientID: m.ClientID, Host: m.ClientHost}
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range ca.Topics {
				stage := w.stageOfTopic(t.Topic)
				for _, p := range t.Partitions {
					ws.Tasks = append(ws.Tasks, TaskRef{Stage: stage, Topic: t.Topic, Partition: p})
					owner[tp{t.Topic, p}] = ws.ID
				}
			}
		}
		slices.SortFunc(ws.Tasks, compareTasks)
		ws.Failures = w.failuresOf(ws.ID)
		st.Workers = append(st.Workers, ws)
	}
	slices.SortFunc(st.Workers, func(a, b WorkerStatus) int { return strings.Compare(a.ID, b.ID) })
	seen := map[tp]bool{}
	for _, l := range g.Lag.Sorted() {
		stage := w.stageOfTopic(l.Topic)
		if stage < 0 {
			continue
		}
		id := tp{l.Topic, l.Partition}
		seen[id] = true
		ps := PartitionStatus{TaskRef: TaskRef{Stage: stage, Topic: l.Topic, Partition: l.Partition},
			Worker: owner[id], Committed: l.Commit.At, End: l.End.Offset, Lag: l.Lag}
		if l.Err != nil {
			ps.Error = l.Err.Error()
		}
		st.Partitions = append(st.Partitions, ps)
	}
	// Partitions assigned but not in the lag answer (none committed yet
	// and no end known) still show their owner.
	for id, who := range owner {
		if !seen[id] {
			st.Partitions = append(st.Partitions, PartitionStatus{TaskRef: TaskRef{Stage: w.stageOfTopic(id.topic), Topic: id.topic, Partition: id.partition},
				Worker: who, Committed: -1, End: -1, Lag: -1, Error: "no offsets known yet"})
		}
	}
	slices.SortFunc(st.Partitions, func(a, b PartitionStatus) int { return compareTasks(a.TaskRef, b.TaskRef) })
	w.skipMarkers(ctx, st.Partitions)
	for _, p := range st.Partitions {
		if p.Lag > 0 {
			st.Lag += p.Lag
		}
	}
	st.Rebalances = w.reports.rebalances(st.Job)
	return st, nil
}

func compareTasks(a, b TaskRef) int {
	if a.Stage != b.Stage {
		return a.Stage - b.Stage
	}
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return int(a.Partition - b.Partition)
}

// stageOfTopic is the stage reading topic, or -1.
func (w *Worker) stageOfTopic(topic string) int {
	if w.isSource(topic) {
		return 0
	}
	for _, s := range w.plan.Stages[1:] {
		if s.Input == topic {
			return s.Index
		}
	}
	return -1
}

// workerOf is the worker id in a worker's client id, or the client id
// when it is not a worker's.
func workerOf(job, clientID string) string {
	if id, ok := strings.CutPrefix(clientID, TransactionalID(job, "")); ok && id != "" {
		return id
	}
	return clientID
}

func itoa(n int32) string { return strconv.FormatInt(int64(n), 10) }

// memberIDs lists the group's workers now.
func memberIDs(ctx context.Context, admin *kadm.Client, job string) ([]string, error) {
	ds, err := admin.DescribeGroups(ctx, GroupName(job))
	if err != nil {
		return nil, err
	}
	d, ok := ds[GroupName(job)]
	if !ok {
		return nil, errors.New("no answer")
	}
	if d.Err != nil {
		return nil, d.Err
	}
	ids := make([]string, 0, len(d.Members))
	for _, m := range d.Members {
		ids = append(ids, workerOf(job, m.ClientID))
	}
	slices.Sort(ids)
	return ids, nil
}

// maxMarkerLag is the largest lag skipMarkers looks into.
const maxMarkerLag = 2

// skipMarkers corrects the lag of partitions written in transactions
// (repartition topics): after a consumer has read a transaction's last
// record, the transaction's commit marker still lies between its
// committed offset and the end, so Kafka's lag is 1 with nothing left to
// read. A small lag is read (read committed, control records kept): when
// only markers lie before the end, the lag is 0.
func (w *Worker) skipMarkers(ctx context.Context, ps []PartitionStatus) {
	probe := map[string]map[int32]kgo.Offset{}
	idx := map[tp]int{}
	for i, p := range ps {
		if p.Stage > 0 && p.Committed >= 0 && p.Lag > 0 && p.Lag <= maxMarkerLag {
			if probe[p.Topic] == nil {
				probe[p.Topic] = map[int32]kgo.Offset{}
			}
			probe[p.Topic][p.Partition] = kgo.NewOffset().At(p.Committed)
			idx[tp{p.Topic, p.Partition}] = i
		}
	}
	if len(probe) == 0 {
		return
	}
	cl, err := kgo.NewClient(append(slices.Clone(w.opts), kgo.ConsumePartitions(probe),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return
	}
	defer cl.Close()
	data := map[tp]int64{}
	seen := map[tp]int64{} // the next offset to read
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for len(seen) < len(idx) || !allAt(seen, idx, ps) {
		fs := cl.PollFetches(pctx)
		if pctx.Err() != nil {
			return // not all read: keep Kafka's lag
		}
		fs.EachRecord(func(r *kgo.Record) {
			id := tp{r.Topic, r.Partition}
			i, ok := idx[id]
			if !ok || r.Offset >= ps[i].End {
				return
			}
			if !r.Attrs.IsControl() {
				data[id]++
			}
			seen[id] = r.Offset + 1
		})
	}
	for id, i := range idx {
		ps[i].Lag = data[id]
	}
}

func allAt(seen map[tp]int64, idx map[tp]int, ps []PartitionStatus) bool {
	for id, i := range idx {
		if seen[id] < ps[i].End {
			return false
		}
	}
	return true
}
