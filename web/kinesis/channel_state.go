package kinesis

// A channel's health and what it owns: its stream (the one it was created
// on, not deleted while it reads it) and its delivery job (owned by the
// channel, see channels.go).

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/jobs"
)

// streamGone says why a channel's stream is not the one it was created
// on: deleted, or deleted and created again ("" when it is the same).
func (h *Handler) streamGone(r *channelRec) string {
	info, err := h.store.DescribeStream(r.Stream)
	switch {
	case err != nil:
		return fmt.Sprintf("stream %s (created %s) was deleted; delete the channel", r.Stream, r.StreamCreated.Format(time.RFC3339Nano))
	case !info.Created.Equal(r.StreamCreated):
		return fmt.Sprintf("stream %s (created %s) was deleted; the stream of that name now was created %s and is not delivered by this channel: delete the channel",
			r.Stream, r.StreamCreated.Format(time.RFC3339Nano), info.Created.Format(time.RFC3339Nano))
	}
	return ""
}

// channelRestart is a delivery job's restart strategy. Firehose retries a
// delivery to S3 for up to 24 hours; so does a channel: waits of 1 s
// doubling to 90 s, with 10% jitter, for 1000 attempts (the most a job
// may have) are about 25 hours (7 attempts in the first 2 minutes, then
// one every 90 s), and a channel delivers again at most ~90 s after S3
// returns.
var channelRestart = map[string]any{"strategy": jobs.RestartExponentialDelay, "initial_backoff": "1s", "max_backoff": "90s",
	"backoff_multiplier": 2, "jitter": 0.1, "attempts": 1000}

// restart is the delivery jobs' restart strategy, as the job file's
// restart mapping.
func (cs *channelSet) restart() map[string]any {
	r := cs.opts.Restart
	if r.Strategy == "" {
		return channelRestart
	}
	m := map[string]any{"strategy": r.Strategy}
	for k, d := range map[string]time.Duration{"delay": r.Delay, "initial_backoff": r.InitialBackoff, "max_backoff": r.MaxBackoff, "reset_after": r.ResetAfter} {
		if d != 0 {
			m[k] = d.String()
		}
	}
	for k, f := range map[string]float64{"backoff_multiplier": r.BackoffMultiplier, "jitter": r.Jitter, "attempts": float64(r.Attempts)} {
		if f != 0 {
			m[k] = f
		}
	}
	return m
}

// channelFault says why a channel does not deliver: its stream gone, its
// delivery job missing, not its own, or not running ("" when it runs or
// starts). failed says the channel is FAILED; a delivery job that failed
// and waits to restart by its strategy is not (the channel heals by
// itself), and the reason says so. The caller holds cs.mu.
func (h *Handler) channelFault(cs *channelSet, r *channelRec) (reason string, failed bool) {
	if reason := h.streamGone(r); reason != "" {
		return reason, true
	}
	info, err := cs.opts.Jobs.Get(channelJob(r.Name))
	switch {
	case err != nil:
		return "delivery job: " + err.Error(), true
	case info.Owner != r.JobOwner:
		return fmt.Sprintf("job %s is not this channel's delivery job (its owner is %q): delete the channel", info.ID, info.Owner), true
	case info.State != "running" && info.State != jobs.StateStarting:
		// (a job starting, as after the server's start, is about to run)
		reason := "delivery job " + info.ID + " is " + info.State
		if info.Reason != "" {
			reason += ": " + info.Reason
		}
		if info.State != string(engine.Failed) {
			return reason, true
		}
		if rs := info.Restarting; rs != nil {
			return fmt.Sprintf("%s; delivery is retried: attempt %d of %d at %s", reason, rs.Attempt, rs.Attempts,
				rs.At.UTC().Format(time.RFC3339)), false
		}
		if restarts(info) {
			// Between a failure and its next attempt's scheduling, between
			// an attempt's countdown and its start, or a job nothing
			// handed to its strategy: RestartLater hands it over unless an
			// attempt is pending or under way. Either way it is retried
			// unless that used the attempts up or a user stopped it.
			_, err := cs.opts.Jobs.RestartLater(info.ID)
			now, gerr := cs.opts.Jobs.Get(info.ID)
			if err == nil && gerr == nil && !jobs.RestartsUsedUp(now.Reason) && now.State != jobs.StateStopped &&
				now.State != string(engine.Finished) {
				return reason + "; delivery is retried", false
			}
		}
		if jobs.RestartsUsedUp(info.Reason) {
			reason += "; UpdateChannel starts it again"
		}
		return reason, true
	}
	return "", false
}

// restarts reports whether a failed delivery job is to be restarted by its
// strategy: it has one (a job file of an earlier version of Runnel has
// none), its attempts are not used up and its state is not damaged.
func restarts(info jobs.Info) bool {
	if jobs.RestartsUsedUp(info.Reason) || strings.Contains(info.Reason, jobs.ErrStateDamaged.Error()) ||
		strings.Contains(info.Reason, "; not restarted: ") {
		return false
	}
	spec, err := jobs.Parse([]byte(info.Spec))
	return err == nil && spec.Restart.Strategy != "" && spec.Restart.Strategy != jobs.RestartNone
}

// heal hands a channel's failed delivery job to its restart strategy: a
// start that a CreateChannel or UpdateChannel asked for and that failed
// (S3 unreachable), or a job the server's start found failed on disk (the
// countdown of its strategy is not kept across a restart of the server).
// A job whose attempts are used up stays failed, and so does one whose
// stream was deleted. The caller holds cs.mu.
func (h *Handler) heal(cs *channelSet, r *channelRec) {
	job := channelJob(r.Name)
	info, err := cs.opts.Jobs.Get(job)
	if err != nil || info.Owner != r.JobOwner || info.State != string(engine.Failed) || h.streamGone(r) != "" {
		return
	}
	if ok, err := cs.opts.Jobs.RestartLater(job); err != nil {
		h.opts.Logger.Warn("channel's delivery job has no restart strategy; UpdateChannel gives it one", "channel", r.Name, "job", job, "err", err)
	} else if ok {
		h.opts.Logger.Info("channel's failed delivery job restarts by its strategy", "channel", r.Name, "job", job)
	}
}

// channelRestartGuard keeps a delivery job whose stream was deleted (or
// whose channel is gone) from restarting: its restart would read a new
// stream of the name, or create it.
func (h *Handler) channelRestartGuard(id, owner string) error {
	cs := h.channelSet()
	if cs == nil || !strings.HasPrefix(owner, h.channelARN("")) {
		return nil
	}
	cs.mu.Lock()
	r := cs.recs[strings.TrimPrefix(owner, h.channelARN(""))]
	deleting := r != nil && r.busy == "DELETING"
	cs.mu.Unlock()
	switch {
	case r == nil || r.JobOwner != owner || channelJob(r.Name) != id:
		return errors.New("its channel was deleted")
	case deleting:
		return errors.New("its channel is being deleted")
	case h.streamGone(r) != "":
		return errors.New(h.streamGone(r))
	}
	return nil
}

// removeJob stops and deletes the delivery job of a channel whose job
// owner is owner; a job that is not there is no error. A job starting (as
// after the server's start) has its start cut short by the stop, and the
// delete settles what its last run staged (jobs.Manager.Delete).
func (cs *channelSet) removeJob(name, owner string) error {
	err := cs.opts.Jobs.Stop(name)
	if err == nil {
		err = cs.opts.Jobs.DeleteOwned(name, owner)
	}
	if errors.Is(err, jobs.ErrJobNotFound) {
		return nil
	}
	return err
}

// deleteStreamUnread deletes a stream with del unless channels read it
// (ResourceInUseException naming them, as AWS refuses it): the channels'
// lock is held across del, so that no channel is created on the stream
// meanwhile. created is the stream's creation time: a channel of an
// earlier stream of the name does not read it.
func (h *Handler) deleteStreamUnread(name string, created time.Time, del func() error) error {
	cs := h.channelSet()
	if cs == nil {
		return del()
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var names []string
	for n, r := range cs.recs {
		if r.Stream == name && r.StreamCreated.Equal(created) {
			names = append(names, n)
		}
	}
	if len(names) > 0 {
		slices.Sort(names)
		return newErr(excResourceInUse, "Stream %s under account %s has channels (%s); delete them first (ListChannels with a StreamFilter lists them).",
			name, h.opts.AccountID, strings.Join(names, ", "))
	}
	return del()
}
