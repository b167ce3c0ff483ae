package streams

// FrameSize is the bytes a record with this key and data takes in a
// segment file, for sizing comparisons such as a disk's own write rate.
func FrameSize(key string, data []byte) int { return frameSize(key, data) }
