package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/confine"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
)

// Manager runs a server's jobs: submit, list, inspect, stop. Each job's file
// and state are persisted under Dir, so jobs start again with the server.
type Manager struct {
	store      *streams.Store
	dir        string
	savepoints string
	retain     int
	failpoint  func(string) error
	log        *slog.Logger
	options    engine.Options
	files      *confine.Root
	ownFiles   bool // files was opened by the manager: Close closes it
	// metricsEvery is the metrics history's interval; sampling stops
	// and waits for the sampler on Close.
	metricsEvery time.Duration
	sampling     struct{ stop, done chan struct{} }
	// boot is the background start of the jobs found running (boot.go).
	boot booting
	// persistMu orders the writes of job files: a run that ends writes
	// its job's state while a caller stops or deploys the job, and the
	// state taken last must be the one renamed into place last.
	persistMu sync.Mutex
	// savepointMS is the time part of the last savepoint name given
	// (newSavepointName).
	savepointMS atomic.Int64
	// restartGuard, when set, is asked before each restart attempt
	// (GuardRestarts).
	restartGuard atomic.Pointer[func(id, owner string) error]
	// restarting counts the restart attempts under way (autoRestart):
	// Close waits for them, so that none writes a job after it.
	restarting sync.WaitGroup
	// settleFailures counts settlings that failed (SettleFailures).
	settleFailures atomic.Int64

	mu struct {
		sync.Mutex
		jobs   map[string]*Job
		closed bool
	}
}

// Job states beyond the runtime's.
const (
	StateStopped = "stopped"
	// StateStarting is a job's state from its submit (or the server's
	// start) until its run begins: it is being built and its state opened.
	StateStarting = "starting"
)

// Job is one submitted job.
type Job struct {
	ID      string
	Spec    *Spec
	Source  []byte
	Created time.Time
	// Owner is the part of the server that manages the job ("" for a
	// user's job; SubmitOptions.Owner).
	Owner string
	// stateDir is where the job's state store is.
	stateDir string

	// outputs keeps the last rows of each sink (Manager.Output).
	outputs outputs
	// errors is the job's error history (Manager.Errors).
	errors errorLog
	// metrics is the job's metrics history (Manager.Metrics).
	metrics metricsLog
	// shardsWarning says the file's source.shards does not match its
	// stream's ("" if it does).
	shardsWarning string
	// sizes is the last measure of its state's size (stateBytes).
	sizes stateSizes
	// restarts is its restart strategy's bookkeeping (restart.go).
	restarts restarts

	mu struct {
		sync.Mutex
		run      *engine.Job
		built    *Built
		stopped  bool   // by the user: not restarted
		finished bool   // its sources ended: not restarted
		failed   string // why its last run failed ("" if it did not): not restarted
		ended    time.Time
		startErr error
		// starting is closed when the start in progress (start) ends;
		// nil when none is. startCtx is its context, startCancel cuts
		// it short (beginStart).
		starting    chan struct{}
		startCtx    context.Context
		startCancel context.CancelCauseFunc
		// runs counts the runs begun (settle.go: markStaged).
		runs uint64
		// deleting is set once a Delete of the job began (settle.go).
		deleting   bool
		finalState *engine.Status
		ckpt       *ckptState
		gone       chan struct{} // closed when the job leaves the manager (goneCh)
	}
}

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	Store *streams.Store
	Dir   string // where job files and states are kept
	// SavepointDir is where savepoints are kept; default "savepoints"
	// next to Dir.
	SavepointDir string
	// Retain is how many complete checkpoints each job keeps (default 3).
	Retain int
	// Failpoint, if set, is called at every step of every checkpoint
	// (the state store's steps and the runtime's). Crash tests only.
	Failpoint func(step string) error
	Logger    *slog.Logger
	Options   engine.Options
	// MetricsInterval is how often each running job's metrics are
	// sampled into its history; default DefaultMetricsInterval.
	MetricsInterval time.Duration
	// Files is the root beneath which jobs' file sources and sinks live
	// (runnel serve --files-root); nil opens "files" beside Dir, with
	// Dir's parent (the data directory) protected.
	Files *confine.Root
}

// Sentinel errors of the manager.
var (
	ErrJobNotFound = errors.New("jobs: job not found")
	ErrJobExists   = errors.New("jobs: a job of that name is running")
	ErrNoSink      = errors.New("jobs: no such dashboard sink")
)

// NewManager loads persisted jobs and starts those that were running, in
// the background (boot.go): it returns before their starts end.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	m := &Manager{store: cfg.Store, dir: cfg.Dir, savepoints: cfg.SavepointDir, retain: cfg.Retain,
		log: cfg.Logger, options: cfg.Options, failpoint: cfg.Failpoint, files: cfg.Files, metricsEvery: cfg.MetricsInterval}
	if m.metricsEvery <= 0 {
		m.metricsEvery = DefaultMetricsInterval
	}
	if m.options.Failpoint == nil {
		m.options.Failpoint = cfg.Failpoint
	}
	if m.savepoints == "" {
		m.savepoints = filepath.Join(filepath.Dir(filepath.Clean(cfg.Dir)), "savepoints")
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.mu.jobs = map[string]*Job{}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create jobs directory: %w", err)
	}
	if m.files == nil {
		var err error
		if m.files, err = defaultFiles(cfg.Dir); err != nil {
			return nil, err
		}
		m.ownFiles = true
	}
	if err := m.recoverJobDirs(); err != nil {
		return nil, fmt.Errorf("jobs directory: %w", err)
	}
	ents, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	var boot []*Job
	for _, e := range ents {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		j := m.load(e.Name())
		m.mu.jobs[j.ID] = j
		switch {
		case j.mu.startErr != nil:
			m.log.Error("persisted job is damaged; not starting it", "job", j.ID, "err", j.mu.startErr)
		case j.mu.stopped:
			m.log.Info("job stays stopped", "job", j.ID)
		case j.mu.finished:
			m.log.Info("job stays finished", "job", j.ID)
		case j.mu.failed != "":
			m.log.Info("job stays failed: resume it or submit it again", "job", j.ID, "reason", j.mu.failed)
		default:
			boot = append(boot, j)
		}
	}
	m.sampling.stop, m.sampling.done = make(chan struct{}), make(chan struct{})
	go m.sampleLoop()
	m.startBoot(boot)
	return m, nil
}

// load reads a persisted job. A job whose files are damaged comes back
// failed, with the damage as its reason, and is not started.
func (m *Manager) load(id string) *Job {
	dir := filepath.Join(m.dir, id)
	src, err := os.ReadFile(filepath.Join(dir, "job.yaml"))
	var spec *Spec
	if err == nil {
		spec, err = Parse(src)
	}
	if err != nil {
		j := &Job{ID: id, Spec: &Spec{Name: id}, Source: src, stateDir: m.stateDir(id)}
		j.mu.startErr = fmt.Errorf("%w: %s: %w; the job was not started: submit it again", ErrStateDamaged, filepath.Join(dir, "job.yaml"), err)
		return j
	}
	j := &Job{ID: id, Spec: spec, Source: src, stateDir: m.stateDir(id)}
	if err := m.recoverState(m.stateDir(id)); err != nil {
		j.mu.startErr = fmt.Errorf("%w: %s: %w", ErrStateDamaged, m.stateDir(id), err)
		return j
	}
	p, err := readJobState(filepath.Join(dir, "state.json"))
	if err != nil {
		j.mu.startErr = fmt.Errorf("%w; %s", err, stateHint(dir))
		return j
	}
	j.Created, j.Owner = p.Created, p.Owner
	j.mu.stopped = p.State == persistStopped
	j.mu.finished = p.State == persistFinished
	if p.State == persistFailed {
		j.mu.failed = p.Reason
		if j.mu.failed == "" {
			j.mu.failed = "failed (no reason was kept)"
		}
	}
	if p.Ended != nil {
		j.mu.ended = *p.Ended
	}
	if p.State == persistFailed {
		at := j.mu.ended
		if at.IsZero() {
			at = time.Now()
		}
		j.failureEntryAt(j.mu.failed, at)
	}
	return j
}

// Submit parses, validates, builds and starts a job file. A *SpecError
// lists every problem of an invalid file.
func (m *Manager) Submit(src []byte) (*Job, error) { return m.SubmitFrom(src, "") }

// SubmitFrom is Submit starting the job from a savepoint ("" for none):
// its state, positions and watermarks, if its stateful operators fit the
// job file (ErrIncompatible says why not). A job started from a savepoint
// replaces a stopped, failed or finished job of its name.
func (m *Manager) SubmitFrom(src []byte, savepoint string) (*Job, error) {
	return m.SubmitWith(src, SubmitOptions{Savepoint: savepoint, Replace: savepoint != ""})
}

// SubmitOptions say how a job file is submitted.
type SubmitOptions struct {
	// Savepoint starts the job from that savepoint ("" for none).
	Savepoint string
	// Replace lets the job replace a stopped, failed or finished job of
	// the same name, whose state and checkpoints go. Without it such a
	// submit is refused with ErrJobNameTaken. A running job is never
	// replaced (ErrJobExists).
	Replace bool
	// Owner marks the job as managed by a part of the server (a Kinesis
	// channel's delivery job names its channel's ARN). Only a submit with
	// the same Owner replaces it, and DeleteOwned and DeployOwned with
	// that owner delete it or deploy over it (ErrJobOwned).
	Owner string
}

// ErrJobNameTaken is the error of submitting a job whose name a stopped,
// failed or finished job has, without SubmitOptions.Replace.
var ErrJobNameTaken = errors.New("jobs: a job of that name exists")

// parse parses and validates the job file src, and checks its files and
// its JavaScript (CheckScripts).
func (m *Manager) parse(src []byte) (*Spec, error) {
	spec, err := Parse(src)
	if err != nil {
		return nil, err
	}
	if err := m.checkFiles(spec); err != nil {
		return nil, err
	}
	if err := spec.CheckScripts(); err != nil {
		return nil, err
	}
	return spec, nil
}

// checkFiles checks that the files spec names are beneath the manager's
// files directory, and that the file sources' files are there.
func (m *Manager) checkFiles(spec *Spec) error {
	if err := spec.checkFilesBeneath(); err != nil {
		return err
	}
	return spec.checkSourceFiles(m.files)
}

// SubmitWith is Submit with options.
func (m *Manager) SubmitWith(src []byte, o SubmitOptions) (*Job, error) {
	savepoint := o.Savepoint
	spec, err := m.parse(src)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return nil, errors.New("jobs: the server is shutting down")
	}
	old, hadOld := m.mu.jobs[spec.Name]
	if hadOld {
		if err := checkOwner(old, o.Owner); err != nil {
			m.mu.Unlock()
			return nil, err
		}
	}
	if hadOld && old.running() {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %q; stop it first or choose another name", ErrJobExists, spec.Name)
	}
	if hadOld && old.isDeleting() {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %q is being deleted; submit once that is done", ErrJobExists, spec.Name)
	}
	if hadOld && !o.Replace {
		state := old.Info(false).State
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %q is %s; submit with replace to replace it (its state and checkpoints go), resume it, or choose another name",
			ErrJobNameTaken, spec.Name, state)
	}
	// The new job counts as running (starting) from here, so a second
	// submit of the same name is refused while this one builds.
	j := &Job{ID: spec.Name, Spec: spec, Source: src, Created: time.Now().UTC(), Owner: o.Owner, stateDir: m.stateDir(spec.Name),
		shardsWarning: shardsWarning(m.store, spec)}
	m.mu.jobs[j.ID] = j
	m.mu.Unlock()
	ctx, end := m.beginStart(j)
	defer end()
	undo := func() {
		m.mu.Lock()
		if hadOld {
			m.mu.jobs[j.ID] = old
		} else {
			delete(m.mu.jobs, j.ID)
		}
		m.mu.Unlock()
	}
	if hadOld {
		old.waitEnded()
		// The earlier job's state goes: what its last run staged is
		// settled first.
		m.settleStaged(ctx, old)
	}
	built, err := Build(spec, Env{Store: m.store, Files: m.files, Resume: savepoint != "", Logger: m.log, onSkip: j.skipEntry, ctx: ctx})
	if err != nil {
		undo()
		if c := context.Cause(ctx); c != nil {
			return nil, fmt.Errorf("start %s: %w: %w", j.ID, c, err)
		}
		return nil, spec.asSpecError(err)
	}
	// A new job starts from nothing, or from the savepoint, in a
	// directory of its own that replaces the earlier job's (its state
	// goes) in one step (jobdir.go).
	prepared := m.aside(j.ID, newSuffix)
	fail := func(err error) (*Job, error) {
		closeSinks(built)
		os.RemoveAll(prepared)
		undo()
		return nil, err
	}
	if savepoint != "" {
		if _, err := m.savepoint(savepoint); err != nil {
			return fail(err)
		}
		if _, err := state.ExportCheckpoint(vfs.Default, filepath.Join(m.savepointPath(savepoint), "state"), state.Latest, filepath.Join(prepared, "state")); err != nil {
			return fail(fmt.Errorf("start %s from savepoint %s: %w", j.ID, savepoint, err))
		}
	}
	if err := m.persistIn(j, prepared); err != nil {
		return fail(fmt.Errorf("save job %s: %w", j.ID, err))
	}
	if err := m.installJobDir(j.ID, prepared); err != nil {
		return fail(fmt.Errorf("save job %s: %w", j.ID, err))
	}
	cs, err := m.openState(j, built)
	if err != nil {
		// The earlier job's directory is gone already: so is this one.
		closeSinks(built)
		if rerr := m.removeJobDir(j.ID); rerr != nil {
			m.log.Error("remove the directory of a job that could not start", "job", j.ID, "err", rerr)
		}
		m.mu.Lock()
		delete(m.mu.jobs, j.ID)
		m.mu.Unlock()
		return nil, err
	}
	m.run(ctx, j, built, cs)
	if hadOld {
		old.markGone()
	}
	return j, nil
}

func (j *Job) running() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.runningLocked()
}

// runningLocked is running, with j.mu held.
func (j *Job) runningLocked() bool {
	if j.mu.stopped || j.mu.finished || j.mu.failed != "" || j.mu.startErr != nil {
		return false
	}
	if j.mu.run == nil {
		return true // submitted and still starting
	}
	st := j.mu.run.Status().State
	return st == engine.Running
}

// Stop stops a job and keeps it stopped across restarts. Its sources stop
// at a last checkpoint, which the sinks commit, so no result is left
// staged; then the job drains.
func (m *Manager) Stop(id string) error {
	j, err := m.job(id)
	if err != nil {
		return err
	}
	j.mu.Lock()
	j.mu.stopped = true
	starting := j.mu.starting != nil
	j.mu.Unlock()
	j.cancelStart(errStopped)
	if err := m.persist(j); err != nil {
		return fmt.Errorf("save job %s: %w", id, err)
	}
	// An operator stuck in a call no interrupt reaches (a long native JS
	// step) holds the stop until the call returns; the caller is not held
	// with it: the job is stopped already as far as it can tell. So with
	// a start in progress, which may wait on a sink's target: its context
	// is canceled and it gives up, or its run is stopped as it begins.
	done := make(chan struct{})
	go func() {
		defer close(done)
		j.waitStarted()
		m.stopRun(j)
	}()
	if starting {
		m.log.Info("job stopped while starting: its start gives up", "job", id)
		return nil
	}
	select {
	case <-done:
	case <-time.After(stopWait):
		m.log.Error("job is still stopping: an operator is stuck in a call that cannot be interrupted; it ends when the call returns", "job", id)
	}
	return nil
}

// stopWait is how long Stop waits for a job's run to end.
const stopWait = 15 * time.Second

// stopRun stops a job's run at a final checkpoint (or plainly if that
// fails) and waits until it ended.
func (m *Manager) stopRun(j *Job) {
	j.mu.Lock()
	rj, cs, gen := j.mu.run, j.mu.ckpt, j.mu.runs
	j.mu.Unlock()
	if rj == nil {
		return
	}
	var err error = ErrNotRunning
	if cs != nil && rj.Status().State == engine.Running {
		_, err = m.checkpoint(j, rj, cs, engine.CheckpointOptions{Stop: true}, "")
		if err != nil && !errors.Is(err, engine.ErrNotRunning) {
			m.log.Error("final checkpoint failed; stopping without it", "job", j.ID, "err", err)
		}
		if err == nil {
			// The sinks committed it and the sources stopped at it:
			// nothing is left staged.
			m.clearStaged(j, gen)
		}
	}
	m.finishStop(rj, err)
}

func (m *Manager) job(id string) (*Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.mu.jobs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrJobNotFound, id)
	}
	return j, nil
}

// Dashboard returns a job's dashboard sink (the only sink "" names when the
// job has exactly one).
func (m *Manager) Dashboard(id, sink string) (*sinks.Dashboard, error) {
	j, err := m.job(id)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	b := j.mu.built
	j.mu.Unlock()
	if b == nil {
		return nil, fmt.Errorf("%w: job %q is not running", ErrNoSink, id)
	}
	if sink == "" && len(b.Dashboards) == 1 {
		for _, d := range b.Dashboards {
			return d, nil
		}
	}
	d, ok := b.Dashboards[sink]
	if !ok {
		names := make([]string, 0, len(b.Dashboards))
		for n := range b.Dashboards {
			names = append(names, n)
		}
		sort.Strings(names)
		switch {
		case len(names) == 0:
			return nil, fmt.Errorf("%w: job %q has none; read any sink's rows with GET /api/v1/jobs/%s/output?sink=ID (runnel jobs output)", ErrNoSink, id, id)
		case sink == "":
			return nil, fmt.Errorf("%w: job %q has several (%s): name one with sink=ID", ErrNoSink, id, strings.Join(names, ", "))
		}
		return nil, fmt.Errorf("%w: %q is not one of job %q's (%s)", ErrNoSink, sink, id, strings.Join(names, ", "))
	}
	return d, nil
}

// Close stops every job without marking it stopped, so they start again
// with the server.
func (m *Manager) Close() {
	m.mu.Lock()
	already := m.mu.closed
	m.mu.closed = true
	js := make([]*Job, 0, len(m.mu.jobs))
	for _, j := range m.mu.jobs {
		js = append(js, j)
	}
	m.mu.Unlock()
	if !already && m.sampling.stop != nil {
		close(m.sampling.stop)
		<-m.sampling.done
	}
	for _, j := range js {
		j.cancelStart(errClosing)
	}
	m.boot.wait() // no job starts once closed: those starting end
	m.restarting.Wait()
	var wg sync.WaitGroup
	for _, j := range js {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.restarts.reset() // no restart after the close
			j.waitStarted()
			m.stopRun(j)
			j.waitEnded()
		}()
	}
	wg.Wait()
	if m.ownFiles {
		m.files.Close()
	}
}
