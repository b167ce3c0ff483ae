package kinesis

// Channel operations that start or stop a delivery job (CreateChannel,
// UpdateChannel, DeleteChannel) can take long: a job stopping takes a
// last checkpoint that publishes to S3, a job starting settles what its
// last run staged. They mark their channel busy (CREATING, UPDATING,
// DELETING, as DescribeChannel shows it) and do that work without the
// channel set's lock, so that DescribeChannel, ListChannels and the
// operations on other channels answer meanwhile; another operation on a
// busy channel answers ResourceInUseException.

import (
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/jobs"
)

// claim marks rec busy with op, or refuses when an operation holds it;
// op "" only checks. The caller holds cs.mu.
func (cs *channelSet) claim(rec *channelRec, op string) error {
	if rec.busy != "" {
		return newErr(excResourceInUse, "Channel %s is %s; try again once that is done.", rec.Name, rec.busy)
	}
	rec.busy = op
	return nil
}

// unlocked runs fn with cs.mu released; the caller holds it, and holds it
// again when unlocked returns.
func (cs *channelSet) unlocked(fn func() error) error {
	cs.mu.Unlock()
	defer cs.mu.Lock()
	return fn()
}

// startDelivery submits a new channel's delivery job with file src,
// first removing the one a gone channel of the name left.
func (cs *channelSet) startDelivery(rec *channelRec, src []byte) error {
	job := channelJob(rec.Name)
	if old, err := cs.opts.Jobs.Get(job); err == nil {
		if old.Owner != rec.JobOwner {
			return newErr(excResourceInUse, "CreateChannel %s: job %s exists and is not a channel's delivery job; delete or rename that job, or choose another channel name.", rec.Name, job)
		}
		// The delivery job of a channel of this name that is gone (its
		// DeleteChannel failed after the channel went, or the server
		// stopped between a CreateChannel's job and its channel): it goes.
		if err := cs.removeJob(job, rec.JobOwner); err != nil {
			return newErr(excResourceInUse, "CreateChannel %s: the delivery job a deleted channel of this name left does not go: %v", rec.Name, err)
		}
	}
	if _, err := cs.opts.Jobs.SubmitWith(src, jobs.SubmitOptions{Owner: rec.JobOwner}); err != nil {
		if errors.Is(err, jobs.ErrJobExists) || errors.Is(err, jobs.ErrJobNameTaken) || errors.Is(err, jobs.ErrJobOwned) {
			return newErr(excResourceInUse, "CreateChannel %s: job %s exists and is not a channel's delivery job; delete or rename that job, or choose another channel name.", rec.Name, job)
		}
		return newErr(excInvalidArgument, "CreateChannel %s: the delivery job does not start: %v", rec.Name, err)
	}
	return nil
}

// deleteDeliveryChannel stops the delivery job (its last checkpoint
// publishes what it holds), deletes it and forgets the channel. A job of
// the channel's name that is not its delivery job is left alone.
//
// A delivery job that is not running (a server killed during an earlier
// DeleteChannel or UpdateChannel left it stopped; S3 failed it) may
// leave objects staged: those of a checkpoint it completed and did not
// publish, and those of an epoch whose checkpoint never completed. It is
// resumed once before it stops: its start settles them (it publishes the
// first, deletes the others), as the job manager's delete would too,
// except for a job an earlier version of Runnel left, which has no mark
// saying that it may have staged output. When S3 does not answer (or the
// stream was deleted) the job is deleted all the same, and its staged
// objects stay until a channel of the name is created again.
func (h *Handler) deleteDeliveryChannel(r *request) (any, error) {
	return h.withChannel(r, func(cs *channelSet, rec *channelRec) (any, error) {
		if err := cs.claim(rec, "DELETING"); err != nil {
			return nil, err
		}
		gone := h.streamGone(rec) != ""
		err := cs.unlocked(func() error { return h.stopDelivery(cs, rec, gone) })
		if rec.busy = ""; err != nil {
			return nil, err
		}
		delete(cs.recs, rec.Name)
		if err := cs.save(); err != nil {
			return nil, fmt.Errorf("save channels: %w", err)
		}
		return struct{}{}, nil
	})
}

// stopDelivery stops and deletes a channel's delivery job, resuming it
// once first when it is not running (and its stream is not gone).
func (h *Handler) stopDelivery(cs *channelSet, rec *channelRec, streamGone bool) error {
	job := channelJob(rec.Name)
	info, err := cs.opts.Jobs.Get(job)
	if err != nil || info.Owner != rec.JobOwner {
		return nil
	}
	if info.State != "running" && info.State != jobs.StateStarting && !streamGone {
		if _, err := cs.opts.Jobs.Resume(job); err != nil {
			h.opts.Logger.Warn("DeleteChannel: the delivery job does not start to publish what it staged; deleting it anyway",
				"channel", rec.Name, "job", job, "err", err)
		}
	}
	if err := cs.removeJob(job, rec.JobOwner); err != nil {
		return newErr(excResourceInUse, "DeleteChannel %s: the delivery job does not go: %v", rec.Name, err)
	}
	return nil
}
