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

// channelFault says why a channel does not deliver: its stream gone, its
// delivery job missing, not its own, or not running ("" when it runs or
// starts).
func (h *Handler) channelFault(cs *channelSet, r *channelRec) string {
	if reason := h.streamGone(r); reason != "" {
		return reason
	}
	info, err := cs.opts.Jobs.Get(channelJob(r.Name))
	switch {
	case err != nil:
		return "delivery job: " + err.Error()
	case info.Owner != r.JobOwner:
		return fmt.Sprintf("job %s is not this channel's delivery job (its owner is %q): delete the channel", info.ID, info.Owner)
	case info.State != "running" && info.State != jobs.StateStarting:
		// (a job starting, as after the server's start, is about to run)
		reason := "delivery job " + info.ID + " is " + info.State
		if info.Reason != "" {
			reason += ": " + info.Reason
		}
		return reason
	}
	return ""
}

// removeJob stops and deletes the delivery job of a channel whose job
// owner is owner; a job that is not there is no error.
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
