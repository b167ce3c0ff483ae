package jobs

import (
	"sync"
	"time"

	"github.com/runnel-dev/runnel/state"
)

// stateSizesEvery is how often a job's state sizes are measured at most;
// a measure that took d is not taken again for stateSizesCost × d, so
// that measuring a large state (it reads every key) takes at most about
// 1/stateSizesCost of a core however often the status is read.
const (
	stateSizesEvery = time.Second
	stateSizesCost  = 20
)

// stateSizes is the last measure of a job's state sizes, by node.
type stateSizes struct {
	mu    sync.Mutex // held while measuring: one measure at a time
	db    *state.DB  // the store measured
	next  time.Time  // when to measure again
	sizes map[string]int64
}

// stateBytes is the size of each stateful node's state in the job's
// current run (nil when it has no state store open), as last measured.
func (j *Job) stateBytes() map[string]int64 {
	j.mu.Lock()
	cs := j.mu.ckpt
	j.mu.Unlock()
	if cs == nil || cs.db == nil || cs.db.Closed() {
		return nil // (a run that ended has no state to measure)
	}
	c := &j.sizes
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.db == cs.db && now.Before(c.next) {
		return c.sizes
	}
	sizes, err := cs.db.OperatorBytes()
	if err != nil {
		return nil
	}
	took := time.Since(now)
	c.db, c.sizes, c.next = cs.db, sizes, now.Add(max(stateSizesEvery, stateSizesCost*took))
	return sizes
}

// withStateBytes sets StateBytes of each node that has state.
func withStateBytes(ops []OperatorInfo, sizes map[string]int64) {
	for i := range ops {
		if n, ok := sizes[ops[i].ID]; ok {
			ops[i].StateBytes = &n
		}
	}
}
