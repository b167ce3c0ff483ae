package streams

// The buffers of written groups a shard keeps for its next groups are
// bounded twice: each at most maxSpare, and those of all the store's
// shards together at most Store.spareBudget, so that thousands of shards
// that once took a burst of puts do not each keep megabytes while idle.

// defaultSpareBudget bounds the group buffers all shards keep for reuse.
const defaultSpareBudget = 64 << 20

// takeSpareLocked makes a spare buffer, if the shard keeps one, the
// pending group's. Caller holds sh.mu.
func (sh *shard) takeSpareLocked() {
	for i, b := range sh.mu.spare {
		if b != nil {
			sh.mu.pending, sh.mu.spare[i] = b, nil
			sh.store.spareBytes.Add(-int64(cap(b)))
			return
		}
	}
}

// keepSpare keeps a written group's buffer for reuse when it is small
// enough, the shard has a free slot and the store's budget has room.
func (sh *shard) keepSpare(buf []byte) {
	n := int64(cap(buf))
	if n > maxSpare {
		return
	}
	if sh.store.spareBytes.Add(n) > sh.store.spareBudget {
		sh.store.spareBytes.Add(-n)
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for i, b := range sh.mu.spare {
		if b == nil {
			sh.mu.spare[i] = buf[:0]
			return
		}
	}
	sh.store.spareBytes.Add(-n)
}

// dropSpares lets go of the shard's spare buffers once its writer has
// stopped.
func (sh *shard) dropSpares() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for i, b := range sh.mu.spare {
		if b != nil {
			sh.store.spareBytes.Add(-int64(cap(b)))
			sh.mu.spare[i] = nil
		}
	}
}
