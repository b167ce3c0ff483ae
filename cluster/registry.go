package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/jobs"
)

// JobsTopic is the compacted topic holding the cluster's jobs, keyed by
// job name: the job file and whether it should run. Every `runnel serve
// --cluster` reads it from the start and runs a worker for each running
// job, so a job submitted to any server runs on all of them; a tombstone
// deletes the job.
const JobsTopic = "runnel.jobs"

// entry is a job's value in the jobs topic.
type entry struct {
	Name    string    `json:"name"`
	File    string    `json:"file"`
	State   string    `json:"state"` // "running" or "stopped"
	Created time.Time `json:"created"`
	At      time.Time `json:"at"`
	// By is the server that wrote the entry.
	By string `json:"by"`
}

// RegistryConfig configures a server's share of the cluster's jobs.
type RegistryConfig struct {
	Brokers []string
	// Worker is the template of each job's worker: ID, timeouts, Log,
	// Metrics (Brokers and Spec are the registry's).
	Worker Config
	// Opts are the Kafka connection options (TLS, SASL).
	Opts []kgo.Opt
}

// Registry runs a worker for every running job of the jobs topic, and
// writes the jobs submitted to this server there.
type Registry struct {
	cfg RegistryConfig
	log *slog.Logger
	cl  *kgo.Client
	// ctx is the workers' parent: it ends with Run's.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		jobs map[string]*clusterJob
	}
}

// clusterJob is one job of the registry and its worker here.
type clusterJob struct {
	entry  entry
	stop   context.CancelFunc // stops the local worker; nil when none runs
	done   chan struct{}
	worker *Worker
	reason string // why the local worker is not running
}

// NewRegistry connects to the cluster; Run reads the jobs topic.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	cfg.Worker.Brokers = cfg.Brokers
	cfg.Worker.EnsureDefaults()
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("cluster: no brokers")
	}
	opts := append(slices.Clone(cfg.Opts), kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{JobsTopic: {0: kgo.NewOffset().AtStart()}}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect: %w", err)
	}
	r := &Registry{cfg: cfg, log: cfg.Worker.Log, cl: cl}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.mu.jobs = map[string]*clusterJob{}
	return r, nil
}

// Run creates the jobs topic if missing, then applies its records until
// ctx ends; then it stops the local workers and returns.
func (r *Registry) Run(ctx context.Context) error {
	defer context.AfterFunc(ctx, r.cancel)()
	defer r.cancel()
	defer r.cl.Close()
	defer r.wg.Wait()
	defer r.stopAll()
	compact := "compact"
	resp, err := kadm.NewClient(r.cl).CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, JobsTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("cluster: create topic %s: %w", JobsTopic, err)
	}
	for {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if fs.IsClientClosed() {
			return errors.New("cluster: the Kafka client closed")
		}
		for _, fe := range fs.Errors() {
			r.log.Error("cluster jobs: read failed", "topic", fe.Topic, "err", fe.Err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Value == nil {
				r.apply(string(rec.Key), nil)
				return
			}
			var e entry
			if err := json.Unmarshal(rec.Value, &e); err != nil {
				r.log.Error("cluster jobs: bad entry in the jobs topic; it is ignored", "key", string(rec.Key), "offset", rec.Offset, "err", err)
				return
			}
			r.apply(string(rec.Key), &e)
		})
	}
}

// apply makes this server's worker of a job follow its entry.
func (r *Registry) apply(name string, e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.mu.jobs[name]
	if e == nil {
		if j != nil {
			r.stopLocked(j)
			delete(r.mu.jobs, name)
		}
		return
	}
	if j != nil && !e.At.After(j.entry.At) && e.File == j.entry.File && e.State == j.entry.State {
		return // already applied (this server wrote it)
	}
	if j == nil {
		j = &clusterJob{}
		r.mu.jobs[name] = j
	}
	changed := j.entry.File != e.File
	j.entry = *e
	if e.State != "running" || changed {
		r.stopLocked(j)
	}
	if e.State == "running" && j.stop == nil {
		r.startLocked(j)
	}
}

func (r *Registry) stopLocked(j *clusterJob) {
	if j.stop != nil {
		j.stop()
		j.stop = nil
	}
}

func (r *Registry) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.mu.jobs {
		r.stopLocked(j)
	}
}

// restartDelay is how long a failed worker waits before it starts again.
const restartDelay = 2 * time.Second

// startLocked runs the job's worker here until it is stopped, starting it
// again after a failure (the failure is logged and shown as the job's
// reason).
func (r *Registry) startLocked(j *clusterJob) {
	ctx, stop := context.WithCancel(r.ctx)
	done := make(chan struct{})
	j.stop, j.done, j.reason = stop, done, ""
	file, name := j.entry.File, j.entry.Name
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(done)
		for ctx.Err() == nil {
			err := r.runOnce(ctx, j, file)
			if err == nil || ctx.Err() != nil {
				return
			}
			r.log.Error("cluster job: the worker stopped; starting it again", "job", name, "err", err)
			r.mu.Lock()
			j.reason = err.Error()
			r.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(restartDelay):
			}
		}
	}()
}

func (r *Registry) runOnce(ctx context.Context, j *clusterJob, file string) error {
	spec, err := jobs.Parse([]byte(file))
	if err != nil {
		return err
	}
	cfg := r.cfg.Worker
	cfg.Spec = spec
	w, err := New(cfg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	j.worker = w
	r.mu.Unlock()
	return w.Run(ctx)
}

// IsClusterJob reports whether a job runs on the cluster: its source is
// Kafka.
func IsClusterJob(spec *jobs.Spec) bool { return spec.Source.Kafka != nil }

// Submit writes a job to the jobs topic (every server then runs a worker
// for it). A job of the same name that runs is refused; a stopped one is
// replaced only with replace.
func (r *Registry) Submit(ctx context.Context, spec *jobs.Spec, src []byte, replace bool) (jobs.Info, error) {
	if _, err := r.planOf(spec); err != nil {
		return jobs.Info{}, err
	}
	r.mu.Lock()
	old := r.mu.jobs[spec.Name]
	r.mu.Unlock()
	now := time.Now().UTC()
	e := entry{Name: spec.Name, File: string(src), State: "running", Created: now, At: now, By: r.cfg.Worker.ID}
	if old != nil {
		switch {
		case old.entry.State == "running":
			return jobs.Info{}, fmt.Errorf("%w: %q runs on the cluster; stop it first or choose another name", jobs.ErrJobExists, spec.Name)
		case !replace:
			return jobs.Info{}, fmt.Errorf("%w: %q is stopped on the cluster; submit with replace to replace it, or choose another name", jobs.ErrJobNameTaken, spec.Name)
		}
	}
	if err := r.write(ctx, spec.Name, &e); err != nil {
		return jobs.Info{}, err
	}
	in, _ := r.Info(spec.Name)
	return in, nil
}

// Stop marks a job stopped: every server stops its worker (each commits
// and leaves the group).
func (r *Registry) Stop(ctx context.Context, name string) error {
	r.mu.Lock()
	j := r.mu.jobs[name]
	var e entry
	if j != nil {
		e = j.entry
	}
	r.mu.Unlock()
	if j == nil {
		return fmt.Errorf("%w: %q", jobs.ErrJobNotFound, name)
	}
	if e.State != "running" {
		return fmt.Errorf("%w: %q is stopped", jobs.ErrNotRunning, name)
	}
	e.State, e.At, e.By = "stopped", time.Now().UTC(), r.cfg.Worker.ID
	return r.write(ctx, name, &e)
}

// Delete removes a stopped job from the jobs topic. Its group and internal
// topics stay (delete them with Kafka's tools to start over).
func (r *Registry) Delete(ctx context.Context, name string) error {
	r.mu.Lock()
	j := r.mu.jobs[name]
	r.mu.Unlock()
	if j == nil {
		return fmt.Errorf("%w: %q", jobs.ErrJobNotFound, name)
	}
	if j.entry.State == "running" {
		return fmt.Errorf("%w: %q runs on the cluster; stop it first", jobs.ErrRunning, name)
	}
	return r.write(ctx, name, nil)
}

// write produces an entry (nil: a tombstone) and applies it here at once.
func (r *Registry) write(ctx context.Context, name string, e *entry) error {
	rec := &kgo.Record{Topic: JobsTopic, Key: []byte(name)}
	if e != nil {
		rec.Value, _ = json.Marshal(e)
	}
	if err := r.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("cluster: write job %s to %s: %w", name, JobsTopic, err)
	}
	r.apply(name, e)
	return nil
}

// Has reports whether name is a cluster job.
func (r *Registry) Has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.jobs[name] != nil
}

// Info is a cluster job's public state, as this server knows it.
func (r *Registry) Info(name string) (jobs.Info, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.mu.jobs[name]
	if j == nil {
		return jobs.Info{}, false
	}
	return j.info(), true
}

func (j *clusterJob) info() jobs.Info {
	in := jobs.Info{ID: j.entry.Name, Name: j.entry.Name, State: j.entry.State, Created: j.entry.Created, Spec: j.entry.File,
		Reason: j.reason}
	if spec, err := jobs.Parse([]byte(j.entry.File)); err == nil {
		in.Graph = spec.GraphNodes()
	}
	if j.entry.State == "running" && j.reason != "" {
		in.Reason = "the worker on this server failed (it starts again): " + j.reason
	}
	return in
}

// List is every cluster job, by name.
func (r *Registry) List() []jobs.Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]jobs.Info, 0, len(r.mu.jobs))
	for _, j := range r.mu.jobs {
		out = append(out, j.info())
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// Status is the whole job, through this server's worker of it.
func (r *Registry) Status(ctx context.Context, name string) (*Status, error) {
	r.mu.Lock()
	j := r.mu.jobs[name]
	var w *Worker
	if j != nil {
		w = j.worker
	}
	r.mu.Unlock()
	switch {
	case j == nil:
		return nil, fmt.Errorf("%w: %q is not a cluster job", jobs.ErrJobNotFound, name)
	case w == nil || j.entry.State != "running":
		return nil, fmt.Errorf("%w: %q has no worker running on this server", jobs.ErrNotRunning, name)
	}
	return w.Status(ctx)
}
