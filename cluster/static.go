package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Workers are static members of their group (their instance id is their
// transactional id). A dynamic member restarted after a kill joins as a
// new member, and the rebalance its join starts waits for every known
// member to rejoin: for the dead one that means until its session times
// out. Every other worker's open transaction waits with it, since a
// transaction's offsets cannot commit while the group joins and syncs;
// kills and restarts a few seconds apart chained such rounds past the
// transaction timeout. A static member restarted with the same instance
// id replaces its previous life at once and gets its assignment back
// without a rebalance; a killed worker that does not come back is
// removed after the session timeout, as before.
//
// A static member does not leave the group when it closes, so that a
// restart keeps its place: leaveGroup makes a worker that stops on
// purpose leave, so its partitions move at once.

// leaveGroup removes the worker's static member from the group.
func (w *Worker) leaveGroup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	group := GroupName(w.cfg.Spec.Name)
	resp, err := w.admin.LeaveGroup(ctx, kadm.LeaveGroup(group).
		InstanceIDs(TransactionalID(w.cfg.Spec.Name, w.cfg.ID)).Reason("worker stopped"))
	if err == nil {
		err = resp.Error()
	}
	// The client left already when it had revoked partitions and not yet
	// rejoined: the member is unknown then.
	if err != nil && !errors.Is(err, kerr.UnknownMemberID) {
		w.cfg.Log.Error("leaving the group failed: the worker's partitions move after the session timeout",
			"group", group, "err", err)
	}
}
