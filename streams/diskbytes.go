package streams

// diskBytes is the size of the view's segment files: what the shard keeps
// on disk (header and complete frames of each segment, and the zeros the
// active segment is filled with ahead of its records).
func (v shardView) diskBytes() int64 {
	var n int64
	for _, s := range v.segs {
		n += max(s.size, s.filled)
	}
	return n
}
