// Package kfakegroup times out the consumer-group members that franz-go's
// kfake forgets to, as a Kafka broker would; both the in-process kfake of
// the tests and the kfakeserver process run it.
package kfakegroup

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// expirer removes the classic-group members that kfake forgot to time
// out, as Kafka would time them out.
//
// kfake arms a member's session timer when it delivers the member's
// JoinGroup or SyncGroup answer. A member whose connection died while its
// join waited for a rebalance (a worker killed as it restarts) gets no
// answer, hence no timer; the leader's sync then ends the deadline of the
// members that have not synced. The dead member stays in the Stable group
// for good, holding its partitions, and nothing reads them. Kafka
// schedules every member's expiry when the join completes, answered or
// not.
//
// The expirer notes when each member last sent a group request and its
// session timeout, and sends LeaveGroup for a member silent for twice its
// session timeout (a member waiting in a rebalance is silent for up to its
// rebalance timeout; kfake expires the others itself after one).
type expirer struct {
	c   *kfake.Cluster
	log io.Writer
	mu  sync.Mutex
	// last is when a member (by group and member id, or instance id for
	// a join without a member id yet) last spoke; session its timeout.
	last    map[memberKey]time.Time
	session map[memberKey]time.Duration
}

type memberKey struct{ group, id string }

// unknownSession is the timeout of a member whose join the expirer did not
// see (kfake restored it from its data directory, and times it itself).
const unknownSession = time.Minute

// Start expires c's silent members until the returned stop is called;
// it writes a line to log for each member it removes. Call stop before
// closing c.
func Start(c *kfake.Cluster, log io.Writer) (stop func(), err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		return nil, err
	}
	e := newExpirer(c, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.run(ctx, cl)
	}()
	return func() {
		cancel()
		<-done
		cl.Close()
	}, nil
}

func newExpirer(c *kfake.Cluster, log io.Writer) *expirer {
	e := &expirer{c: c, log: log, last: map[memberKey]time.Time{}, session: map[memberKey]time.Duration{}}
	observe := func(key kmsg.Key) {
		c.ControlKey(int16(key), func(r kmsg.Request) (kmsg.Response, error, bool) {
			e.saw(r)
			return nil, nil, false // kfake handles the request as usual
		})
	}
	for _, k := range []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.OffsetCommit, kmsg.TxnOffsetCommit} {
		observe(k)
	}
	return e
}

func (e *expirer) saw(r kmsg.Request) {
	var group, member string
	var instance *string
	var session time.Duration
	switch r := r.(type) {
	case *kmsg.JoinGroupRequest:
		group, member, instance, session = r.Group, r.MemberID, r.InstanceID, time.Duration(r.SessionTimeoutMillis)*time.Millisecond
	case *kmsg.SyncGroupRequest:
		group, member, instance = r.Group, r.MemberID, r.InstanceID
	case *kmsg.HeartbeatRequest:
		group, member, instance = r.Group, r.MemberID, r.InstanceID
	case *kmsg.OffsetCommitRequest:
		group, member, instance = r.Group, r.MemberID, r.InstanceID
	case *kmsg.TxnOffsetCommitRequest:
		group, member, instance = r.Group, r.MemberID, r.InstanceID
	}
	keys := []memberKey{}
	if member != "" {
		keys = append(keys, memberKey{group, member})
	}
	if instance != nil {
		keys = append(keys, memberKey{group, "instance/" + *instance})
	}
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range keys {
		e.last[k] = now
		if session > 0 {
			e.session[k] = session
		}
	}
	if len(keys) > 0 {
		if _, ok := e.last[memberKey{group, ""}]; !ok {
			e.last[memberKey{group, ""}] = now // the groups to look at
		}
	}
}

// run looks at the groups every second and sends LeaveGroup for their
// silent members until ctx ends.
func (e *expirer) run(ctx context.Context, cl *kgo.Client) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, leave := range e.silent(time.Now()) {
			// A failed leave is tried again at the next look.
			cl.Request(ctx, leave)
		}
	}
}

// silent returns a LeaveGroup request for each member of a group the
// expirer saw that has been silent for twice its session timeout.
func (e *expirer) silent(now time.Time) []*kmsg.LeaveGroupRequest {
	e.mu.Lock()
	var groups []string
	for k := range e.last {
		if k.id == "" {
			groups = append(groups, k.group)
		}
	}
	e.mu.Unlock()
	var out []*kmsg.LeaveGroupRequest
	for _, g := range groups {
		info := e.c.GroupInfo(g)
		if info == nil {
			continue
		}
		var leave *kmsg.LeaveGroupRequest
		e.mu.Lock()
		for _, m := range info.Members {
			k := memberKey{g, m.MemberID}
			last, ok := e.last[k]
			session := e.session[k]
			if m.InstanceID != nil {
				ik := memberKey{g, "instance/" + *m.InstanceID}
				if l, iok := e.last[ik]; iok && (!ok || l.After(last)) {
					last, ok = l, true
				}
				session = max(session, e.session[ik])
			}
			if !ok {
				e.last[k] = now // first seen now: restored by kfake
				continue
			}
			if session == 0 {
				session = unknownSession
			}
			if now.Sub(last) < 2*session {
				continue
			}
			if leave == nil {
				leave = kmsg.NewPtrLeaveGroupRequest()
				leave.Group = g
			}
			fmt.Fprintf(e.log, "kfake: group %s: member %s silent for %s (session timeout %s): sending LeaveGroup for it\n",
				g, m.MemberID, now.Sub(last).Round(time.Millisecond), session)
			// By member id alone: by instance id, kfake would remove
			// whichever member holds the id now, a new life perhaps.
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID = m.MemberID
			leave.Members = append(leave.Members, lm)
		}
		e.mu.Unlock()
		if leave != nil {
			out = append(out, leave)
		}
	}
	return out
}
