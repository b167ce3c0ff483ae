package jobs

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/engine"
)

// A job's restart strategy (the file's restart:) says what happens when a
// run fails: with none the job stays failed until someone resumes it;
// with fixed-delay or exponential-delay it is resumed from its latest
// checkpoint after a delay, as Resume would, until Attempts consecutive
// failures are used up. A start by the server that fails counts the same:
// the job's start when the server starts, and each restart attempt's
// (startFailed). Not restarted: a stop, a finish, a start a user asked for
// (a file that fails to build or validate at its submit, a resume that
// fails to start: the user sees the error). The countdown lives in the
// server's memory: a server that starts again during it finds the job
// failed on disk and leaves it failed (a run's failure is saved; a failed
// start is not, so that job is started again).

// Restart strategies.
const (
	RestartNone             = "none"
	RestartFixedDelay       = "fixed-delay"
	RestartExponentialDelay = "exponential-delay"
)

// Defaults of the restart strategies.
const (
	DefaultRestartDelay      = 10 * time.Second
	DefaultFixedAttempts     = 3
	DefaultInitialBackoff    = time.Second
	DefaultMaxBackoff        = 5 * time.Minute
	DefaultBackoffMultiplier = 2.0
	DefaultRestartJitter     = 0.1
	DefaultBackoffAttempts   = 10
	DefaultRestartResetAfter = 10 * time.Minute
	maxRestartAttempts       = 1000
)

// Restart is a job's restart strategy. Validate fills in the defaults of
// its Strategy; the other strategy's fields stay zero.
type Restart struct {
	// Strategy is none, fixed-delay or exponential-delay; empty is none.
	Strategy string `yaml:"strategy"`
	// Delay is fixed-delay's wait before each attempt.
	Delay time.Duration `yaml:"delay"`
	// InitialBackoff is exponential-delay's first wait; each further
	// consecutive failure multiplies it by BackoffMultiplier, up to
	// MaxBackoff, and Jitter spreads it by that fraction either way.
	InitialBackoff    time.Duration `yaml:"initial_backoff"`
	MaxBackoff        time.Duration `yaml:"max_backoff"`
	BackoffMultiplier float64       `yaml:"backoff_multiplier"`
	Jitter            float64       `yaml:"jitter"`
	// Attempts is how many consecutive failures are restarted; the next
	// one leaves the job failed.
	Attempts int `yaml:"attempts"`
	// ResetAfter is how long a run must have run for its failure to count
	// as the first again.
	ResetAfter time.Duration `yaml:"reset_after"`
}

// enabled reports whether failed runs are restarted.
func (r Restart) enabled() bool { return r.Strategy != "" && r.Strategy != RestartNone }

// delay is the wait before attempt n (1 for the first), with rnd in [0, 1)
// placing it within the jitter.
func (r Restart) delay(n int, rnd float64) time.Duration {
	if r.Strategy == RestartFixedDelay {
		return r.Delay
	}
	d := float64(r.InitialBackoff) * math.Pow(r.BackoffMultiplier, float64(n-1))
	d = min(d, float64(r.MaxBackoff))
	d *= 1 + r.Jitter*(2*rnd-1)
	return time.Duration(d).Round(time.Millisecond)
}

func (p *parser) restart(top fieldMap) {
	c, ok := p.mapping(top.m["restart"], "restart", "restart")
	if !ok {
		return
	}
	r := &p.s.Restart
	r.Strategy = p.str(c, "strategy")
	r.Delay = p.duration(c, "delay", true)
	r.InitialBackoff = p.duration(c, "initial_backoff", true)
	r.MaxBackoff = p.duration(c, "max_backoff", true)
	r.BackoffMultiplier = p.number(c, "backoff_multiplier")
	r.Jitter = p.number(c, "jitter")
	r.Attempts = int(p.integer(c, "attempts", true))
	r.ResetAfter = p.duration(c, "reset_after", true)
}

// restart validates the restart strategy and fills in its defaults.
func (v *validator) restart() {
	r := &v.s.Restart
	set := func(key string, nonzero bool) bool {
		if nonzero {
			return true
		}
		if v.s.info == nil {
			return false
		}
		_, ok := v.s.info.pos["restart."+key]
		return ok
	}
	fixed := map[string]bool{"delay": set("delay", r.Delay != 0)}
	backoff := map[string]bool{
		"initial_backoff":    set("initial_backoff", r.InitialBackoff != 0),
		"max_backoff":        set("max_backoff", r.MaxBackoff != 0),
		"backoff_multiplier": set("backoff_multiplier", r.BackoffMultiplier != 0),
		"jitter":             set("jitter", r.Jitter != 0),
	}
	shared := map[string]bool{"attempts": set("attempts", r.Attempts != 0), "reset_after": set("reset_after", r.ResetAfter != 0)}
	misplaced := func(keys map[string]bool, want string) {
		for _, k := range sortedKeys(keys) {
			if keys[k] {
				v.add("restart."+k, CodeConflict, fmt.Sprintf("%s is not a setting of strategy %s", k, orNone(r.Strategy)), "it belongs to "+want)
			}
		}
	}
	switch r.Strategy {
	case "", RestartNone:
		if r.Strategy == "" && (anyTrue(fixed) || anyTrue(backoff) || anyTrue(shared)) {
			v.add("restart.strategy", CodeMissing, "a restart mapping needs its strategy", "`fixed-delay` or `exponential-delay`")
			return
		}
		misplaced(fixed, RestartFixedDelay)
		misplaced(backoff, RestartExponentialDelay)
		misplaced(shared, "fixed-delay and exponential-delay")
		return
	case RestartFixedDelay:
		misplaced(backoff, RestartExponentialDelay)
		if r.Delay == 0 {
			r.Delay = DefaultRestartDelay
		}
		if r.Attempts == 0 {
			r.Attempts = DefaultFixedAttempts
		}
	case RestartExponentialDelay:
		misplaced(fixed, RestartFixedDelay)
		if r.InitialBackoff == 0 {
			r.InitialBackoff = DefaultInitialBackoff
		}
		if r.MaxBackoff == 0 {
			r.MaxBackoff = max(DefaultMaxBackoff, r.InitialBackoff)
		}
		if !backoff["backoff_multiplier"] {
			r.BackoffMultiplier = DefaultBackoffMultiplier
		}
		if !backoff["jitter"] {
			r.Jitter = DefaultRestartJitter
		}
		if r.Attempts == 0 {
			r.Attempts = DefaultBackoffAttempts
		}
		if r.MaxBackoff < r.InitialBackoff {
			v.add("restart.max_backoff", CodeInvalid, fmt.Sprintf("%s is shorter than initial_backoff %s", r.MaxBackoff, r.InitialBackoff), "at least initial_backoff")
		}
		if m := r.BackoffMultiplier; m < 1 || m > 100 || math.IsNaN(m) {
			v.add("restart.backoff_multiplier", CodeInvalid, fmt.Sprintf("%g is out of range", m), "from 1 to 100")
		}
		if j := r.Jitter; j < 0 || j > 1 || math.IsNaN(j) {
			v.add("restart.jitter", CodeInvalid, fmt.Sprintf("%g is out of range", j), "from 0 to 1: the fraction each delay is spread by")
		}
	default:
		v.add("restart.strategy", CodeInvalid, fmt.Sprintf("%q is not a restart strategy", r.Strategy), "`none`, `fixed-delay` or `exponential-delay`")
		return
	}
	if r.ResetAfter == 0 {
		r.ResetAfter = DefaultRestartResetAfter
	}
	if r.Attempts > maxRestartAttempts {
		v.add("restart.attempts", CodeInvalid, fmt.Sprintf("%d is too many", r.Attempts), fmt.Sprintf("from 1 to %d", maxRestartAttempts))
	}
}

func orNone(s string) string {
	if s == "" {
		return RestartNone
	}
	return s
}

func anyTrue(m map[string]bool) bool {
	for _, b := range m {
		if b {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for _, k := range []string{"delay", "initial_backoff", "max_backoff", "backoff_multiplier", "jitter", "attempts", "reset_after"} {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// Restarting is the restart a failed job waits for (Info.Restarting).
type Restarting struct {
	// Attempt is the attempt waited for (1 for the first) of Attempts.
	Attempt  int       `json:"attempt"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"next_attempt_at"`
}

// restarts is a job's restart bookkeeping.
type restarts struct {
	mu sync.Mutex
	// failures counts the consecutive failures since the job was
	// submitted, resumed or restarted by a user, or last ran ResetAfter.
	failures int
	// seq numbers the countdowns: a countdown acts only if it is the last.
	seq     int
	pending *Restarting
	timer   *time.Timer
}

// info returns the pending restart, or nil.
func (r *restarts) info() *Restarting {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		return nil
	}
	p := *r.pending
	return &p
}

// reset drops a pending restart and the count of failures: a user
// resumes or restarts the job.
func (r *restarts) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	r.failures = 0
	r.pending = nil
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

// restartFailed is called when run rj of j failed (and was saved failed):
// it schedules the next attempt by the job's strategy, or, with its
// attempts used up, leaves the job failed saying so.
func (m *Manager) restartFailed(j *Job, rj *engine.Job) {
	if !j.Spec.Restart.enabled() {
		return
	}
	st := rj.Status()
	if !m.scheduleRestart(j, time.Since(st.Started)) {
		j.mu.Lock()
		if j.mu.failed != "" && j.mu.run == rj {
			j.mu.failed += j.Spec.Restart.usedUp()
		}
		j.mu.Unlock()
		if err := m.persist(j); err != nil {
			m.log.Error("save job", "job", j.ID, "err", err)
		}
	}
}

// usedUp is what a failure's reason says once the attempts are used up.
func (r Restart) usedUp() string {
	return fmt.Sprintf(restartsUsedUpMark+"%d of %d, strategy %s): resume it or submit it again", r.Attempts, r.Attempts, r.Strategy)
}

// scheduleRestart counts a failure of j after a run of ran and schedules
// the next attempt; false when the attempts are used up.
func (m *Manager) scheduleRestart(j *Job, ran time.Duration) bool {
	rs := j.Spec.Restart
	r := &j.restarts
	r.mu.Lock()
	if ran >= rs.ResetAfter {
		r.failures = 0 // it ran long enough: this failure is the first
	}
	r.failures++
	n := r.failures
	if n > rs.Attempts {
		r.pending = nil
		r.mu.Unlock()
		m.log.Error("job failed; its restart attempts are used up", "job", j.ID, "attempts", rs.Attempts)
		return false
	}
	d := rs.delay(n, rand.Float64())
	r.seq++
	seq := r.seq
	r.pending = &Restarting{Attempt: n, Attempts: rs.Attempts, At: time.Now().Add(d).UTC()}
	r.timer = time.AfterFunc(d, func() { m.autoRestart(j, seq) })
	r.mu.Unlock()
	m.log.Info("job failed; restarting it", "job", j.ID, "attempt", n, "of", rs.Attempts, "in", d)
	return true
}

// autoRestart resumes j from its latest checkpoint for countdown seq,
// unless the countdown was dropped or the job left the failed state
// meanwhile (stopped, resumed, deleted, replaced, or the server closing).
// A restart that fails to start counts as a failure.
func (m *Manager) autoRestart(j *Job, seq int) {
	r := &j.restarts
	r.mu.Lock()
	if r.seq != seq || r.pending == nil {
		r.mu.Unlock()
		return
	}
	n := r.pending.Attempt
	r.pending, r.timer = nil, nil
	r.mu.Unlock()
	m.mu.Lock()
	ours := !m.mu.closed && m.mu.jobs[j.ID] == j
	if ours {
		m.restarting.Add(1) // under m.mu: Close, once closed, waits for it
	}
	m.mu.Unlock()
	if !ours {
		return
	}
	defer m.restarting.Done()
	if !m.restartAllowed(j) {
		return
	}
	j.waitEnded()
	j.mu.Lock()
	if j.mu.stopped || j.mu.finished || j.mu.failed == "" && j.mu.startErr == nil {
		j.mu.Unlock()
		return
	}
	if _, err := m.rerun(j, "job restarted by its restart strategy", "job", j.ID, "attempt", n); err != nil {
		m.log.Error("job restart failed to start", "job", j.ID, "attempt", n, "err", err)
		m.startFailed(j)
	}
}

// startFailed is called after a start by the server (at its start, or an
// attempt of the restart strategy): when it failed, and the job has a
// restart strategy and was not stopped, the failure counts as one of the
// strategy's and the next attempt is scheduled, or, with the attempts used
// up, the job's reason says so. A failed start is not saved failed: the
// job starts again with the server.
func (m *Manager) startFailed(j *Job) {
	j.mu.Lock()
	failed := j.mu.startErr != nil && !j.mu.stopped
	j.mu.Unlock()
	m.mu.Lock()
	closed := m.mu.closed
	m.mu.Unlock()
	if !failed || closed || !j.Spec.Restart.enabled() {
		return
	}
	if !m.scheduleRestart(j, 0) {
		j.mu.Lock()
		if j.mu.startErr != nil {
			j.mu.startErr = fmt.Errorf("%w%s", j.mu.startErr, j.Spec.Restart.usedUp())
		}
		j.mu.Unlock()
	}
}

// restartsUsedUpMark is how a failed job's reason (usedUp) says that its
// restart strategy's attempts are used up.
const restartsUsedUpMark = "; restart attempts used up ("

// RestartsUsedUp reports whether a failed job's reason says its restart
// strategy's attempts are used up (kept on disk: also after a restart of
// the server).
func RestartsUsedUp(reason string) bool { return strings.Contains(reason, restartsUsedUpMark) }

// RestartLater hands job id, failed, to its restart strategy as a start
// by the server that failed would be: its next attempt is scheduled, and
// the ones after it by the strategy. It is for a part of the server that
// manages a job (a Kinesis channel's delivery job) and has it heal by
// itself where a plain job stays failed: after a start it asked for
// failed (a submit or deploy whose run failed to start), and after the
// server's start found the job failed on disk. It reports whether an
// attempt was scheduled: not when the job is not failed (running,
// starting, stopped, finished), an attempt is pending already, its state
// is damaged, or its attempts are used up (its reason says so). A job
// without a restart strategy is an error.
func (m *Manager) RestartLater(id string) (bool, error) {
	j, err := m.job(id)
	if err != nil {
		return false, err
	}
	if !j.Spec.Restart.enabled() {
		return false, fmt.Errorf("jobs: %q has no restart strategy", id)
	}
	m.mu.Lock()
	closed := m.mu.closed
	m.mu.Unlock()
	j.mu.Lock()
	failed := !closed && !j.mu.stopped && !j.mu.finished && (j.mu.failed != "" || j.mu.startErr != nil)
	reason := j.mu.failed
	if j.mu.startErr != nil {
		reason = j.mu.startErr.Error()
		failed = failed && !errors.Is(j.mu.startErr, ErrStateDamaged)
	}
	j.mu.Unlock()
	if !failed || RestartsUsedUp(reason) || j.restarts.info() != nil {
		return false, nil
	}
	if !m.scheduleRestart(j, 0) {
		j.mu.Lock()
		if j.mu.startErr != nil {
			j.mu.startErr = fmt.Errorf("%w%s", j.mu.startErr, j.Spec.Restart.usedUp())
		} else if j.mu.failed != "" {
			j.mu.failed += j.Spec.Restart.usedUp()
		}
		j.mu.Unlock()
		return false, m.persist(j)
	}
	return true, nil
}

// GuardRestarts sets g to be asked before each restart attempt of a job
// by its restart strategy (the job's id and owner): an error leaves the
// job failed, the error added to its reason, and ends its countdown. It
// is for a part of the server that manages jobs (a Kinesis channel whose
// stream was deleted is not started again).
func (m *Manager) GuardRestarts(g func(id, owner string) error) { m.restartGuard.Store(&g) }

// restartAllowed asks the restart guard about an attempt of j; when it
// refuses, j stays failed saying why.
func (m *Manager) restartAllowed(j *Job) bool {
	g := m.restartGuard.Load()
	if g == nil {
		return true
	}
	err := (*g)(j.ID, j.Owner)
	if err == nil {
		return true
	}
	j.mu.Lock()
	switch {
	case j.mu.startErr != nil:
		j.mu.startErr = fmt.Errorf("%w; not restarted: %w", j.mu.startErr, err)
		j.mu.failed = j.mu.startErr.Error() // saved failed: not started with the server either
	case j.mu.failed != "":
		j.mu.failed += "; not restarted: " + err.Error()
	}
	j.mu.Unlock()
	m.log.Warn("job not restarted", "job", j.ID, "err", err)
	if err := m.persist(j); err != nil {
		m.log.Error("save job", "job", j.ID, "err", err)
	}
	return false
}
