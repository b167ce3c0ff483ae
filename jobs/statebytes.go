package jobs

// stateBytes is the size of each stateful node's state in the job's
// current run (nil when it has no state store open).
func (j *Job) stateBytes() map[string]int64 {
	j.mu.Lock()
	cs := j.mu.ckpt
	j.mu.Unlock()
	if cs == nil || cs.db == nil {
		return nil
	}
	sizes, err := cs.db.OperatorBytes()
	if err != nil {
		return nil
	}
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
