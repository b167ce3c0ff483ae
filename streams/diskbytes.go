package streams

// diskBytes is the size of the view's segment files: what the shard keeps
// on disk (header and complete frames of each segment).
func (v shardView) diskBytes() int64 {
	var n int64
	for _, s := range v.segs {
		n += s.size
	}
	return n
}
