package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/client/consumer"
	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/operators"
	kafkasrc "github.com/runnel-dev/runnel/sources/kafka"
	kinesissrc "github.com/runnel-dev/runnel/sources/kinesis"
)

// A job whose source is Kinesis: its first stage's tasks are the stream's
// shards. The workers share the shards through leases in PostgreSQL (the
// table of package client/consumer, one group per job), and each shard's
// records, read by consumer.Run's shard readers, are processed by the
// worker's loop in its Kafka transaction. The transaction also carries a
// position record per shard it read (topic PositionsTopic, keyed by
// shard), and it is committed inside the lease store's fenced commit (as
// is one that announces shards idle, fence.go): the leases are checked
// and locked, the Kafka transaction commits, then the PostgreSQL
// checkpoints are written, in one PostgreSQL transaction. A
// crash between the two commits leaves Kafka ahead of PostgreSQL; whoever
// takes a shard next reads its newest committed position record and skips
// what it covers. docs/scale-out.md explains the ordering.

// PositionsTopic is the compacted topic of a Kinesis job's committed shard
// positions.
func PositionsTopic(job string) string { return job + ".kinesis-positions" }

// kinesisTask prefixes the topic of a Kinesis shard's task id.
const kinesisTask = "kinesis:"

// openPrefix starts the value of a watermark record that announces a
// producer: a finished shard's task writes one for each child shard,
// holding the watermark at the parent's until the child writes its own.
const openPrefix = "open:"

var errAborted = errors.New("cluster: the transaction was aborted")

// shardBatch is records of one shard handed to the loop, or (end) the
// shard's end; done receives nil once the transaction holding it
// committed.
type shardBatch struct {
	shard string
	epoch uint64
	recs  []consumer.Record
	end   bool
	done  chan error
}

type kinesisInput struct {
	w       *Worker
	src     *kinesissrc.Source
	stream  string
	pool    *pgxpool.Pool
	store   consumer.LeaseStore
	fence   consumer.FencedCommitter
	topic   string
	batches chan *shardBatch
	stopped chan struct{} // closed when the loop is done
	// refused says the last transaction was aborted because the lease
	// table did not confirm the worker's leases (the loop's log says so).
	refused bool

	mu     sync.Mutex
	leases map[string]uint64 // shard → epoch, by the last Sync
	// handing counts, per shard, the batches its reader is handing to the
	// loop (submit) and waits on; released is when its reader last got
	// one back. A shard's idle clock runs only while its reader is free.
	handing  map[string]int
	released map[string]time.Time

	// Used by the loop only.
	committed map[string]consumergroups.Checkpoint // newest committed position per shard
	pending   map[string]consumergroups.Checkpoint // position in the open transaction
	loaded    map[string]uint64                    // epoch whose position record was read
	idled     map[string]uint64                    // shards announced idle in the open transaction, by lease epoch (fence.go)
	inTx      []*shardBatch
}

func newKinesisInput(w *Worker, src *kinesissrc.Source) (*kinesisInput, error) {
	sc := src.Config()
	switch {
	case w.cfg.Leases == "":
		return nil, fmt.Errorf("%w: job %s: a kinesis source needs the PostgreSQL lease table (--leases-postgres DSN)", ErrPlan, w.cfg.Spec.Name)
	case sc.Consumer != "":
		return nil, fmt.Errorf("%w: job %s: source.kinesis.consumer (enhanced fan-out) is not supported on workers", ErrPlan, w.cfg.Spec.Name)
	case sc.Start != kinesissrc.StartTrimHorizon && sc.Start != kinesissrc.StartLatest:
		return nil, fmt.Errorf("%w: job %s: source.kinesis.start %s: workers start at trim_horizon or latest", ErrPlan, w.cfg.Spec.Name, sc.Start)
	}
	if err := consumergroups.ValidName("worker", w.cfg.ID); err != nil {
		return nil, fmt.Errorf("%w: job %s: %w", ErrPlan, w.cfg.Spec.Name, err)
	}
	return &kinesisInput{w: w, src: src, stream: sc.Stream, topic: PositionsTopic(w.cfg.Spec.Name),
		batches: make(chan *shardBatch), stopped: make(chan struct{}), leases: map[string]uint64{},
		handing: map[string]int{}, released: map[string]time.Time{},
		committed: map[string]consumergroups.Checkpoint{}, pending: map[string]consumergroups.Checkpoint{}, loaded: map[string]uint64{},
		idled: map[string]uint64{}}, nil
}

// setup opens the lease store and lists the stream's shards: the first
// stage's tasks, all of them expected by the next stage's watermark.
func (k *kinesisInput) setup(ctx context.Context) (shards []string, open int32, err error) {
	if k.pool, err = pgxpool.New(ctx, k.w.cfg.Leases); err != nil {
		return nil, 0, fmt.Errorf("cluster: lease table: %w", err)
	}
	start := k.src.Config().Start // trim_horizon or latest, as the group's start
	k.store, err = consumer.PostgresLeases(ctx, k.pool, k.src.Client(), k.stream, GroupName(k.w.cfg.Spec.Name),
		consumergroups.Config{LeaseDuration: k.w.cfg.LeaseDuration, Start: start}, consumer.PostgresOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: %w", err)
	}
	k.fence = k.store.(consumer.FencedCommitter)
	all, err := k.listShards(ctx)
	if err != nil {
		return nil, 0, err
	}
	for _, s := range all {
		shards = append(shards, aws.ToString(s.ShardId))
		if s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil {
			open++
		}
	}
	return shards, max(open, 1), nil
}

func (k *kinesisInput) listShards(ctx context.Context) ([]types.Shard, error) {
	var out []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(k.stream)}
	for {
		res, err := k.src.Client().ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("cluster: list shards of %s: %w", k.stream, err)
		}
		out = append(out, res.Shards...)
		if res.NextToken == nil {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
}

// run reads the leased shards until ctx ends, handing their records to
// the loop.
func (k *kinesisInput) run(ctx context.Context) error {
	sc := k.src.Config()
	g := consumer.Group{Stream: k.stream, Kinesis: k.src.Client(), Leases: leaseTracker{k}}
	g.Options = consumer.Options{Worker: k.w.cfg.ID, MaxRecords: min(sc.MaxRecords, maxPollRecords),
		IdleTimeBetweenReads: sc.PollInterval, ShutdownTimeout: 5 * time.Second, Logger: k.w.cfg.Log}
	return consumer.Run(ctx, g, func(ctx context.Context, b consumer.Batch) error {
		return k.submit(ctx, &shardBatch{shard: b.ShardID, recs: b.Records})
	})
}

// submit hands sb to the loop and waits until its transaction ended.
// Meanwhile the shard's reader reads nothing: the time does not count
// toward the shard's idleness (kinesisInput.idle).
func (k *kinesisInput) submit(ctx context.Context, sb *shardBatch) error {
	k.mu.Lock()
	epoch, ok := k.leases[sb.shard]
	if ok {
		k.handing[sb.shard]++
	}
	k.mu.Unlock()
	if !ok {
		return fmt.Errorf("cluster: shard %s: no lease", sb.shard)
	}
	defer func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.handing[sb.shard]--; k.handing[sb.shard] <= 0 {
			delete(k.handing, sb.shard)
		}
		k.released[sb.shard] = time.Now()
	}()
	sb.epoch, sb.done = epoch, make(chan error, 1)
	select {
	case k.batches <- sb:
	case <-ctx.Done():
		return ctx.Err()
	case <-k.stopped:
		return errors.New("cluster: the worker stopped")
	}
	select {
	case err := <-sb.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-k.stopped:
		return errors.New("cluster: the worker stopped")
	}
}

// leaseTracker is the lease store as consumer.Run sees it: Sync tells the
// worker its leases' epochs; checkpoints are written by the fenced commit
// (a batch is handed back only once committed), and a shard's end goes
// through the loop, so that the end is committed after the shard's last
// records and its watermark records.
type leaseTracker struct{ k *kinesisInput }

func (l leaseTracker) Sync(ctx context.Context, worker string) (consumer.SyncResult, error) {
	res, err := l.k.store.Sync(ctx, worker)
	if err == nil {
		m := make(map[string]uint64, len(res.Leases))
		for _, ls := range res.Leases {
			m[ls.Shard] = ls.Epoch
		}
		l.k.mu.Lock()
		l.k.leases = m
		l.k.mu.Unlock()
	}
	return res, err
}

func (l leaseTracker) Checkpoint(ctx context.Context, shard, _ string, _ uint64, cp consumergroups.Checkpoint) error {
	if cp.SequenceNumber == consumergroups.ShardEnd {
		return l.k.submit(ctx, &shardBatch{shard: shard, end: true})
	}
	return nil // stored by the commit that made the batch's handler return
}

func (l leaseTracker) Release(ctx context.Context, shard, worker string, epoch uint64, cp *consumergroups.Checkpoint) error {
	return l.k.store.Release(ctx, shard, worker, epoch, cp)
}

func (l leaseTracker) Leave(ctx context.Context, worker string) error {
	return l.k.store.Leave(ctx, worker)
}

// held returns the shards this worker holds leases on, with their epochs.
func (k *kinesisInput) held() map[string]uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.leases)
}

func shardTask(shard string) tp { return tp{topic: kinesisTask + shard} }

// task returns the shard's task, making it when missing.
func (k *kinesisInput) task(ctx context.Context, shard string) (*task, error) {
	id := shardTask(shard)
	if t := k.w.tasks[id]; t != nil {
		return t, nil
	}
	t, err := k.w.newTask(ctx, id)
	if err != nil {
		return nil, err
	}
	t.name = shard
	k.w.tasks[id] = t
	return t, nil
}

// take processes the shard batches waiting, in the open transaction.
func (k *kinesisInput) take(ctx context.Context) error {
	for {
		select {
		case sb := <-k.batches:
			k.inTx = append(k.inTx, sb)
			if err := k.apply(ctx, sb); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (k *kinesisInput) apply(ctx context.Context, sb *shardBatch) error {
	if k.loaded[sb.shard] != sb.epoch {
		// A lease taken (again): the newest committed position record
		// may be ahead of the checkpoint the shard is read from.
		pos, err := k.position(ctx, sb.shard)
		if err != nil {
			return err
		}
		if after(pos, k.committed[sb.shard]) {
			k.committed[sb.shard] = pos
		}
		k.loaded[sb.shard] = sb.epoch
	}
	from := k.committed[sb.shard]
	if p, ok := k.pending[sb.shard]; ok && after(p, from) {
		from = p
	}
	t, err := k.task(ctx, sb.shard)
	if err != nil {
		return err
	}
	if sb.end {
		if from.SequenceNumber != consumergroups.ShardEnd {
			if err := k.finish(ctx, t, sb.shard); err != nil {
				return err
			}
		}
		k.pending[sb.shard] = consumergroups.Checkpoint{SequenceNumber: consumergroups.ShardEnd}
		return nil
	}
	recs := make([]operators.Record, 0, len(sb.recs))
	var last consumergroups.Checkpoint
	for _, r := range sb.recs {
		cp := consumergroups.Checkpoint{SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber}
		if !after(cp, from) {
			continue // committed already, by this worker or the shard's previous owner
		}
		last = cp
		v, err := t.dec.Decode(r.Data)
		if err != nil {
			return fmt.Errorf("cluster: shard %s sequence %s/%d: decode: %w", sb.shard, r.SequenceNumber, r.SubSequenceNumber, err)
		}
		recs = append(recs, operators.Record{Value: v, EventTime: r.ArrivalTime.UnixMilli(),
			Origin: fmt.Sprintf("%s@%s/%d", sb.shard, r.SequenceNumber, r.SubSequenceNumber)})
	}
	if len(recs) == 0 {
		return nil
	}
	k.pending[sb.shard] = last
	wasIdle := t.touch(k.w.readClock.now())
	if err := k.w.routeSource(ctx, t, recs); err != nil {
		return err
	}
	k.w.sourceWatermark(ctx, t, wasIdle)
	return nil
}

// finish writes a finished shard's watermark records: each child is
// announced at the shard's watermark, then the shard goes idle for good.
func (k *kinesisInput) finish(ctx context.Context, t *task, shard string) error {
	shards, err := k.listShards(ctx)
	if err != nil {
		return err
	}
	wm := t.sent
	for _, s := range shards {
		if aws.ToString(s.ParentShardId) == shard || aws.ToString(s.AdjacentParentShardId) == shard {
			k.w.sendWatermarkAs(ctx, t, aws.ToString(s.ShardId), openPrefix+strconv.FormatInt(wm, 10))
		}
	}
	k.w.sendIdle(ctx, t, FinalGeneration)
	return nil
}

// positionRecord is the value of a position record.
type positionRecord struct {
	consumergroups.Checkpoint
	Worker string `json:"worker"`
	Epoch  uint64 `json:"epoch"`
}

// position reads the shard's newest committed position record. It first
// waits until every transaction that wrote to the topic before now has
// ended, so a commit that finished before the lease was taken is seen.
func (k *kinesisInput) position(ctx context.Context, shard string) (consumergroups.Checkpoint, error) {
	var pos consumergroups.Checkpoint
	ends, err := k.w.admin.ListEndOffsets(ctx, k.topic)
	if err != nil {
		return pos, fmt.Errorf("cluster: %s: end offset: %w", k.topic, err)
	}
	hw, _ := ends.Lookup(k.topic, 0)
	for {
		lso, err := k.w.lastStable(ctx, k.topic, 0)
		if err != nil {
			return pos, fmt.Errorf("cluster: %s: %w", k.topic, err)
		}
		if lso >= hw.Offset {
			break
		}
		select {
		case <-ctx.Done():
			return pos, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	_, err = k.w.readChangelog(ctx, k.topic, 0, 0, func(c Change) error {
		if string(c.Key) != shard || c.Value == nil {
			return nil
		}
		var p positionRecord
		if err := json.Unmarshal(c.Value, &p); err != nil {
			return fmt.Errorf("%w: %s: shard %s: %w", ErrChangelog, k.topic, shard, err)
		}
		pos = p.Checkpoint
		return nil
	})
	if err != nil {
		return pos, fmt.Errorf("cluster: read %s: %w", k.topic, err)
	}
	return pos, nil
}

// end ends the open transaction. With shard positions or idle marks in
// it, it writes the positions' records and commits inside the lease
// store's fenced commit.
func (k *kinesisInput) end(ctx context.Context, try kgo.TransactionEndTry) (bool, error) {
	k.refused = false
	w := k.w
	if try == kgo.TryAbort || len(k.pending) == 0 && len(k.idled) == 0 {
		committed, err := w.sess.End(ctx, try)
		k.settle(committed && err == nil)
		return committed, err
	}
	var cps []consumer.FencedCheckpoint
	for shard, cp := range k.pending {
		b, err := json.Marshal(positionRecord{Checkpoint: cp, Worker: w.cfg.ID, Epoch: k.loaded[shard]})
		if err != nil {
			return false, err
		}
		w.produce(ctx, &kgo.Record{Topic: k.topic, Partition: 0, Key: []byte(shard), Value: b}, nil)
		cps = append(cps, consumer.FencedCheckpoint{Shard: shard, Epoch: k.loaded[shard], Checkpoint: cp})
	}
	cps = k.fenceIdle(cps)
	ended, committed := false, false
	var endErr error
	err := k.fence.CommitFenced(ctx, w.cfg.ID, cps, func(ctx context.Context) error {
		ended = true
		committed, endErr = w.sess.End(ctx, kgo.TryCommit)
		switch {
		case endErr != nil:
			return endErr
		case !committed:
			return errAborted
		}
		return nil
	})
	switch {
	case endErr != nil:
		k.settle(false)
		return false, endErr
	case err == nil || errors.Is(err, consumer.ErrCheckpointNotStored):
		if err != nil {
			w.fail(FailKinesisCheckpoint, "", "Kinesis checkpoints not stored after the Kafka commit: the position records are ahead of the lease table until the next commit", err)
		}
		k.settle(true)
		return true, nil
	case !ended:
		// The leases were not all held (or the lease table failed): the
		// open transaction must not commit.
		if errors.Is(err, consumergroups.ErrLeaseLost) {
			w.cfg.Log.Error("transaction aborted: a shard lease is no longer this worker's", "worker", w.cfg.ID, "err", err)
		} else {
			w.cfg.Log.Error("transaction aborted: the lease table did not confirm this worker's shard leases", "worker", w.cfg.ID, "err", err)
		}
		_, endErr = w.sess.End(ctx, kgo.TryAbort)
		k.refused = true
		k.loaded = map[string]uint64{}
		k.settle(false)
		return false, endErr
	}
	k.settle(false) // the Kafka transaction aborted (a rebalance)
	return false, nil
}

// settle tells the batches of the ended transaction how it ended.
func (k *kinesisInput) settle(committed bool) {
	var res error
	if committed {
		for s, cp := range k.pending {
			k.committed[s] = cp
		}
	} else {
		res = errAborted
	}
	clear(k.pending)
	clear(k.idled)
	for _, sb := range k.inTx {
		sb.done <- res
	}
	k.inTx = k.inTx[:0]
}

// close ends the reading and the lease store's connections.
func (k *kinesisInput) close() {
	if k.pool != nil {
		k.pool.Close()
	}
}

// after reports whether position a is beyond b ("" is before everything,
// SHARD_END after everything).
func after(a, b consumergroups.Checkpoint) bool {
	switch {
	case a.SequenceNumber == b.SequenceNumber:
		return a.SubSequenceNumber > b.SubSequenceNumber
	case b.SequenceNumber == consumergroups.ShardEnd || a.SequenceNumber == "":
		return false
	case a.SequenceNumber == consumergroups.ShardEnd || b.SequenceNumber == "":
		return true
	case len(a.SequenceNumber) != len(b.SequenceNumber):
		return len(a.SequenceNumber) > len(b.SequenceNumber)
	}
	return strings.Compare(a.SequenceNumber, b.SequenceNumber) > 0
}

// newSourceDecoder makes a decoder of the source's record values.
func (w *Worker) newSourceDecoder() kafkasrc.Decoder {
	if w.kin != nil {
		return w.kin.src.NewRecordDecoder()
	}
	return w.src.NewRecordDecoder()
}

func isKinesisSource(spec *jobs.Spec) bool { return spec.Source.Kind() == jobs.SourceKinesis }

// end ends the open transaction: through the fenced commit when the source
// is Kinesis.
func (w *Worker) end(ctx context.Context, try kgo.TransactionEndTry) (bool, error) {
	if w.kin != nil {
		return w.kin.end(ctx, try)
	}
	return w.sess.End(ctx, try)
}

// startKinesis starts reading the leased shards when the source is
// Kinesis; the function returned stops it (after the loop ended: shards
// then hand their leases back at their committed positions).
func (w *Worker) startKinesis(ctx context.Context) (stop func()) {
	if w.kin == nil {
		return func() {}
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.kin.run(rctx); err != nil {
			w.cfg.Log.Error("Kinesis shard readers stopped", "worker", w.cfg.ID, "err", err)
		}
	}()
	return func() {
		close(w.kin.stopped)
		cancel()
		<-done
		w.kin.close()
	}
}

// setupPositions creates the positions topic of a Kinesis job when
// missing: one partition, compacted.
func (w *Worker) setupPositions(ctx context.Context) error {
	if w.kin == nil {
		return nil
	}
	topic := w.kin.topic
	existing, err := w.admin.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("cluster: list %s: %w", topic, err)
	}
	if d, ok := existing[topic]; ok && d.Err == nil {
		return nil
	}
	compact := "compact"
	resp, err := w.admin.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("cluster: create topic %s: %w", topic, err)
	}
	return nil
}
