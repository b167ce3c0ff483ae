package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/kafkaconn"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/operators/window"
	kafkasink "github.com/runnel-dev/runnel/sinks/kafka"
	kafkasrc "github.com/runnel-dev/runnel/sources/kafka"
	kinesissrc "github.com/runnel-dev/runnel/sources/kinesis"
	"github.com/runnel-dev/runnel/state"
)

// Config configures one worker of a job.
type Config struct {
	// Brokers are the Kafka cluster's: the job's source and sinks must be
	// on it, and its internal topics and group live there.
	Brokers []string
	// Spec is the validated job.
	Spec *jobs.Spec
	// ID names the worker among the job's workers; it names the
	// worker's transactional id, so a restarted worker with the same ID
	// fences its previous life's open transaction.
	ID string
	// Partitions of the repartition and changelog topics, used when the
	// worker creates them (0: the source topic's).
	Partitions int
	// CommitInterval is how often the worker commits its transaction.
	CommitInterval time.Duration
	// SessionTimeout is how long the group waits for a silent worker.
	SessionTimeout time.Duration
	// IdleTimeout is how long a source partition's reads wait without
	// records (time spent processing or committing does not count)
	// before its task tells the next stage it is idle.
	IdleTimeout time.Duration
	// TransactionTimeout bounds how long a killed worker's open
	// transaction holds up readers when the worker does not come back.
	TransactionTimeout time.Duration
	// DataDir, if set, holds the worker's local copy of its tasks'
	// committed state (Pebble): a task that comes back to the worker
	// restores from it plus its changelog's tail.
	DataDir string
	// Snapshot, if set, is where the worker writes a snapshot of each
	// task's local state every SnapshotEvery commits (it needs a
	// DataDir), and where a task that has no local state restores from
	// before it reads its changelog's tail.
	Snapshot      *SnapshotStore
	SnapshotEvery int
	// Leases is the PostgreSQL connection string of the shard-lease table
	// of a job whose source is Kinesis; LeaseDuration is how long a
	// worker's leases last without a renewal (by the database's clock).
	Leases        string
	LeaseDuration time.Duration
	Log           *slog.Logger
	// Metrics, when set, receives the worker's figures (metrics.go).
	Metrics *Metrics
}

// Defaults of Config.
const (
	DefaultCommitInterval     = 500 * time.Millisecond
	DefaultSessionTimeout     = 6 * time.Second
	DefaultIdleTimeout        = engine.DefaultIdleTimeout
	DefaultTransactionTimeout = 20 * time.Second
)

// EnsureDefaults fills in the defaults.
func (c *Config) EnsureDefaults() *Config {
	if c.CommitInterval <= 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.TransactionTimeout <= 0 {
		c.TransactionTimeout = DefaultTransactionTimeout
	}
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Validate checks the configuration without contacting a broker.
func (c *Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("cluster: no brokers")
	case c.Spec == nil:
		return errors.New("cluster: no job")
	case c.ID == "" || strings.ContainsAny(c.ID, " /"):
		return fmt.Errorf("cluster: worker id %q: give a name without spaces or slashes", c.ID)
	case c.Snapshot != nil && c.DataDir == "":
		return errors.New("cluster: snapshots are taken from the local state: give a data directory too")
	case c.Partitions < 0:
		return fmt.Errorf("cluster: partitions %d: give a count ≥ 1, or 0 for the source topic's", c.Partitions)
	}
	return nil
}

// GroupName is the consumer group of a job's workers.
func GroupName(job string) string { return "runnel-job." + job }

// TransactionalID is the transactional id of a job's worker.
func TransactionalID(job, worker string) string { return "runnel-worker." + job + "." + worker }

// Worker runs its share of a job's tasks. Make it with New, run it with Run.
type Worker struct {
	cfg   Config
	built *jobs.Built
	plan  *Plan
	opts  []kgo.Opt // connection options
	src   *kafkasrc.Source
	kin   *kinesisInput // a Kinesis source's input, instead of src
	sinks map[string]*kafkasink.Sink
	nodes map[string]*engine.Node
	// outs maps a source or node id to the ids reading it.
	outs map[string][]string
	// feeds lists, per stage, the keyed operators its tasks write to.
	feeds [][]string
	// producers lists, per keyed operator, the tasks writing to its
	// repartition topic (the watermarks its tasks expect).
	producers  map[string][]string
	partitions int32
	// store receives the LogStore of the window instance being made.
	store *LogStore

	sess  *kgo.GroupTransactSession
	admin *kadm.Client
	// adminCl is admin's client, for requests kadm would answer from its
	// metadata cache (changelogID).
	adminCl *kgo.Client
	tasks   map[tp]*task
	idled   []tp // source partitions announced idle in the open transaction (fence.go)
	// logIDs holds the topic ID each changelog topic had when a task
	// last restored from it in this life (see restore).
	logIDs map[string]kadm.TopicID
	local  *localState // nil without a DataDir
	snap   *snapshots  // nil without a Snapshot store

	mu struct {
		sync.Mutex
		assigned map[tp]time.Duration // partition → the read clock when assigned
		revoked  bool
	}
	produceErr error
	produceMu  sync.Mutex
	readClock  readClock // time the loop's polls waited (loop.go)

	// Status (status.go): statusMu guards admin for Status callers;
	// reports holds the workers' reports; gen is the group generation
	// the loop last saw, gens hands new ones to the status goroutine.
	statusMu sync.Mutex
	reports  reports
	gen      int32
	gens     chan rebalanceSeen
	// failures are the failures the worker survived (failures.go).
	failures failures
	// scratch holds the detect operators' working state (detect.go).
	scratch *state.DB

	// outboxes are the PostgreSQL and S3 sinks (outbox.go); outboxDirty
	// the outbox partitions the open transaction wrote to, and the task.
	outboxes    map[string]*outbox
	outboxDirty map[tp]string
}

type tp struct {
	topic     string
	partition int32
}

func (t tp) String() string { return fmt.Sprintf("%s/%d", t.topic, t.partition) }

// New builds the job and checks that the workers can run it: one Kafka
// source and Kafka sinks on the cluster's brokers, operators that keep
// state only when keyed, no dead letters (they go to a Runnel stream).
func New(cfg Config) (*Worker, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, sinks: map[string]*kafkasink.Sink{}, outboxes: map[string]*outbox{}, nodes: map[string]*engine.Node{},
		outs: map[string][]string{}, producers: map[string][]string{}, tasks: map[tp]*task{}, gens: make(chan rebalanceSeen, 8)}
	w.mu.assigned = map[tp]time.Duration{}
	w.failures.changed = make(chan struct{}, 1)
	spec := cfg.Spec
	if spec.Source.Kafka == nil && !isKinesisSource(spec) {
		return nil, fmt.Errorf("%w: job %s: the source must be kafka or kinesis (workers read Kafka partitions or leased Kinesis shards)", ErrPlan, spec.Name)
	}
	if err := refuseDeadLetters(spec); err != nil {
		return nil, err
	}
	built, err := jobs.Build(spec, jobs.Env{WindowStore: func(string) func(window.Codec) window.Store {
		return func(c window.Codec) window.Store {
			w.store = NewLogStore(c)
			return w.store
		}
	}})
	if err != nil {
		return nil, err
	}
	w.built = built
	g := built.Graph
	if w.plan, err = Cut(g, nil); err != nil {
		w.closeSinks()
		return nil, err
	}
	var tls *kafkasrc.TLSConfig
	var sasl *kafkasrc.SASLConfig
	if ks, ok := g.Sources[0].Source.(*kinesissrc.Source); ok {
		if w.kin, err = newKinesisInput(w, ks); err != nil {
			w.closeSinks()
			return nil, err
		}
	} else {
		w.src = g.Sources[0].Source.(*kafkasrc.Source)
		sc := w.src.Config()
		if sc.TopicRegex != "" || sc.Metadata != "" {
			w.closeSinks()
			return nil, fmt.Errorf("%w: job %s: source.kafka: topic_regex and metadata are not supported on workers", ErrPlan, spec.Name)
		}
		if !sameBrokers(sc.Brokers, cfg.Brokers) {
			w.closeSinks()
			return nil, fmt.Errorf("%w: job %s: source.kafka.brokers %v are not the cluster's %v: a worker's transaction spans its input and output", ErrPlan, spec.Name, sc.Brokers, cfg.Brokers)
		}
		tls, sasl = sc.TLS, sc.SASL
	}
	for _, s := range g.Sinks {
		if ob := newOutbox(spec.Name, s); ob != nil {
			ob.stage = w.plan.StageOf[s.ID]
			w.outboxes[s.ID] = ob
			for _, in := range s.Inputs {
				w.outs[in] = append(w.outs[in], s.ID)
			}
			continue
		}
		ks, ok := s.Sink.(*kafkasink.Sink)
		if !ok {
			w.closeSinks()
			return nil, fmt.Errorf("%w: job %s: sink %s: workers write to kafka, postgres and s3 sinks only", ErrPlan, spec.Name, s.ID)
		}
		if !sameBrokers(ks.Config().Brokers, cfg.Brokers) {
			w.closeSinks()
			return nil, fmt.Errorf("%w: job %s: sink %s: brokers %v are not the cluster's %v", ErrPlan, spec.Name, s.ID, ks.Config().Brokers, cfg.Brokers)
		}
		w.sinks[s.ID] = ks
		for _, in := range s.Inputs {
			w.outs[in] = append(w.outs[in], s.ID)
		}
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		w.nodes[n.ID] = n
		for _, in := range n.Inputs {
			w.outs[in] = append(w.outs[in], n.ID)
		}
	}
	w.feeds = make([][]string, len(w.plan.Stages))
	for _, s := range w.plan.Stages[1:] {
		for _, in := range w.nodes[s.Keyed].Inputs {
			from := w.plan.StageOf[nodeOf(in)]
			if !slices.Contains(w.feeds[from], s.Keyed) {
				w.feeds[from] = append(w.feeds[from], s.Keyed)
			}
		}
	}
	if w.opts, err = kafkaconn.Options(cfg.Brokers, tls, sasl); err != nil {
		w.closeSinks()
		return nil, err
	}
	return w, nil
}

func sameBrokers(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func (w *Worker) closeSinks() {
	for _, s := range w.built.Graph.Sinks {
		s.Sink.Close()
	}
}

// Plan returns the job's stages and internal topics.
func (w *Worker) Plan() *Plan { return w.plan }

// Run joins the job's group and processes the partitions assigned to the
// worker until ctx ends; then it commits what it processed, leaves the
// group and returns nil. An error means the worker cannot go on (a
// fenced transactional id, a broker that refuses the transaction): what
// it had not committed is processed again by whoever takes its partitions.
func (w *Worker) Run(ctx context.Context) error {
	defer w.closeSinks()
	if w.kin != nil {
		defer w.kin.close()
	}
	admin, err := kgo.NewClient(w.opts...)
	if err != nil {
		return fmt.Errorf("cluster: connect: %w", err)
	}
	defer admin.Close()
	w.statusMu.Lock()
	w.admin, w.adminCl = kadm.NewClient(admin), admin
	w.statusMu.Unlock()
	if err := w.setupTopics(ctx); err != nil {
		return err
	}
	if w.cfg.DataDir != "" {
		w.openLocal()
		defer w.closeLocal()
	}
	if w.cfg.Snapshot != nil {
		if w.snap, err = newSnapshots(ctx, w.cfg.Snapshot, w.cfg.Spec.Name, w.cfg.SnapshotEvery); err != nil {
			return err
		}
		defer w.snap.wg.Wait()
	}
	if err := w.setupPositions(ctx); err != nil {
		return err
	}
	sctx, stopStatus := context.WithCancel(ctx)
	defer w.runStatus(sctx, w.admin)()
	defer stopStatus()
	w.cfg.Metrics.add(w)
	defer w.cfg.Metrics.remove(w)
	if err := w.openSession(); err != nil {
		return err
	}
	defer w.startDelivery(ctx)()
	stopInput := w.startKinesis(ctx)
	err = w.loop(ctx)
	stopInput()
	w.dropTasks()
	w.closeScratch()
	if err != nil {
		w.sess.Close()
		return err
	}
	w.sess.Close()
	w.leaveGroup()
	return nil
}

// setupTopics learns the source's partitions, creates the internal topics
// that are missing and checks the partition count of those that exist.
func (w *Worker) setupTopics(ctx context.Context) error {
	var stage0 []string
	if w.kin != nil {
		var err error
		if stage0, w.partitions, err = w.kin.setup(ctx); err != nil {
			return err
		}
	} else {
		srcTopics := w.src.Config().Topics
		details, err := w.admin.ListTopics(ctx, srcTopics...)
		if err != nil {
			return fmt.Errorf("cluster: list source topics: %w", err)
		}
		for _, t := range srcTopics {
			d, ok := details[t]
			if !ok || d.Err != nil {
				return fmt.Errorf("cluster: source topic %s: %w", t, errOr(d.Err, kerr.UnknownTopicOrPartition))
			}
			for _, p := range d.Partitions.Numbers() {
				stage0 = append(stage0, tp{t, p}.String())
			}
			w.partitions = max(w.partitions, int32(len(d.Partitions)))
		}
	}
	if w.cfg.Partitions > 0 {
		w.partitions = int32(w.cfg.Partitions)
	}
	repart, logs := w.plan.Topics()
	want := map[string]map[string]*string{}
	compact := "compact"
	for _, t := range repart {
		want[t] = nil
	}
	for _, t := range logs {
		want[t] = map[string]*string{"cleanup.policy": &compact}
	}
	internal := append(slices.Clone(repart), logs...)
	internal = append(internal, w.outboxTopics()...)
	// The admin client is new (Run makes it), so kadm's metadata cache
	// holds nothing older than these requests.
	existing, err := w.admin.ListTopics(ctx, internal...)
	if err != nil {
		return fmt.Errorf("cluster: list internal topics: %w", err)
	}
	var created []string
	for _, t := range internal {
		if d, ok := existing[t]; ok && d.Err == nil {
			if err := w.checkPartitions(t, len(d.Partitions)); err != nil {
				return err
			}
			continue
		}
		resp, err := w.admin.CreateTopic(ctx, w.partitions, -1, want[t], t)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("cluster: create topic %s: %w", t, err)
		}
		if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("cluster: create topic %s: %w", t, resp.Err)
		}
		created = append(created, t)
	}
	// Another worker may have created a topic between the listing and
	// the creation (TOPIC_ALREADY_EXISTS), with its own partition count:
	// the topics are looked at again, at the broker (kadm's cache holds
	// the listing from before).
	for _, t := range created {
		var d map[string]kmsg.MetadataResponseTopic
		for range 50 {
			if d, err = w.describeTopics(ctx, t); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		if err != nil {
			return fmt.Errorf("cluster: topic %s created: %w", t, err)
		}
		if err := w.checkPartitions(t, len(d[t].Partitions)); err != nil {
			return err
		}
	}
	for _, s := range w.plan.Stages[1:] {
		var prods []string
		for _, in := range w.nodes[s.Keyed].Inputs {
			from := w.plan.Stages[w.plan.StageOf[nodeOf(in)]]
			if from.Index == 0 {
				prods = append(prods, stage0...)
				continue
			}
			for p := range w.partitions {
				prods = append(prods, tp{from.Input, p}.String())
			}
		}
		slices.Sort(prods)
		w.producers[s.Keyed] = slices.Compact(prods)
	}
	return nil
}

// checkPartitions refuses an internal topic of n partitions if the job's
// workers use another count.
func (w *Worker) checkPartitions(topic string, n int) error {
	if int32(n) != w.partitions {
		return fmt.Errorf("cluster: topic %s has %d partitions, the job's workers use %d: the maximum parallelism is fixed when the internal topics are created", topic, n, w.partitions)
	}
	return nil
}

func errOr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// openSession joins the group with the worker's transactional producer.
func (w *Worker) openSession() error {
	repart, _ := w.plan.Topics()
	manual := map[string]bool{}
	for _, t := range w.plan.Changelog {
		manual[t] = true
	}
	for _, t := range repart {
		manual[t] = true
	}
	for _, t := range w.outboxTopics() {
		manual[t] = true
	}
	var topics []string
	if w.src != nil {
		topics = slices.Clone(w.src.Config().Topics)
	}
	topics = append(topics, repart...)
	opts := append(slices.Clone(w.opts),
		kgo.ClientID(TransactionalID(w.cfg.Spec.Name, w.cfg.ID)),
		kgo.ConsumerGroup(GroupName(w.cfg.Spec.Name)),
		// A static member: a worker restarted with the same id takes
		// its previous life's place in the group without a rebalance
		// that waits for the dead member (see leaveGroup).
		kgo.InstanceID(TransactionalID(w.cfg.Spec.Name, w.cfg.ID)),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(w.cfg.SessionTimeout),
		// A rebalance waits this long for the members to rejoin: a
		// killed worker never does, and an open transaction's End waits
		// for the rebalance to finish.
		kgo.RebalanceTimeout(w.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, w.cfg.SessionTimeout/3)),
		kgo.TransactionalID(TransactionalID(w.cfg.Spec.Name, w.cfg.ID)),
		kgo.TransactionTimeout(w.cfg.TransactionTimeout),
		kgo.RecordPartitioner(partitioner{manual: manual, keyed: kgo.StickyKeyPartitioner(nil)}),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			w.mu.Lock()
			defer w.mu.Unlock()
			now := w.readClock.now()
			for t, ps := range m {
				for _, p := range ps {
					w.mu.assigned[tp{t, p}] = now
				}
			}
		}),
		kgo.OnPartitionsRevoked(w.lose),
		kgo.OnPartitionsLost(w.lost),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("cluster: join group %s: %w", GroupName(w.cfg.Spec.Name), err)
	}
	w.sess = sess
	return nil
}

// lose forgets partitions the group took away; the session aborts the
// open transaction, and the loop drops every task's uncommitted state.
func (w *Worker) lose(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			delete(w.mu.assigned, tp{t, p})
		}
	}
	if len(m) > 0 {
		w.mu.revoked = true
	}
}

// lost is lose for the partitions of a worker that lost its place in the
// group: most often the group removed it, silent for longer than its
// session timeout (paused, starved of CPU, cut off from Kafka), and other
// workers may own its partitions already. It
// is a zombie until it rejoins: the transaction it has open cannot commit
// (the broker refuses its offsets for a generation it is no longer part
// of, and the session aborts it), so nothing it did since its last commit
// reaches any topic, and its tasks restore on its next assignment.
func (w *Worker) lost(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	if n > 0 {
		w.cfg.Log.Warn("fenced: this worker lost its partitions (the group removed it, silent for longer than its session timeout: paused, starved or cut off from Kafka); its open transaction aborts and it rejoins",
			"worker", w.cfg.ID, "partitions", n, "session_timeout", w.cfg.SessionTimeout)
	}
	w.lose(ctx, cl, m)
}

// partitioner sends records of the internal topics to the partition the
// worker chose, and sink records by key as Kafka's default does.
type partitioner struct {
	manual map[string]bool
	keyed  kgo.Partitioner
}

func (p partitioner) ForTopic(t string) kgo.TopicPartitioner {
	if p.manual[t] {
		return kgo.ManualPartitioner().ForTopic(t)
	}
	return p.keyed.ForTopic(t)
}
