package sources

import (
	"context"
	"io"
	"slices"
	"strconv"
)

// MemoryShard is one shard of a Memory source: raw record bytes decoded in
// the configured Format, or ready-made Values.
type MemoryShard struct {
	ID      string
	Parents []string
	Data    [][]byte // decoded with Memory.Format
	Values  []any    // used when Data is nil
	// Arrival is every record's arrival time (epoch ms).
	Arrival int64
}

// Memory is a bounded source over records held in memory: for tests and
// benchmarks that want the runtime without a log or files. Positions are
// record indexes. Shards with Parents model a reshard.
type Memory struct {
	format Format
	shards []MemoryShard
}

// NewMemory returns a Memory source over shards, decoding Data in format.
func NewMemory(format Format, shards ...MemoryShard) *Memory {
	return &Memory{format: format, shards: shards}
}

// Bounded reports true: a Memory source ends.
func (m *Memory) Bounded() bool { return true }

// Shards lists the configured shards.
func (m *Memory) Shards(ctx context.Context) ([]Shard, error) { return m.shardList(), nil }

func (m *Memory) shardList() []Shard {
	out := make([]Shard, len(m.shards))
	for i, s := range m.shards {
		out[i] = Shard{ID: s.ID, Parents: slices.Clone(s.Parents)}
	}
	return out
}

// Open reads shard from the record after index after.
func (m *Memory) Open(ctx context.Context, shard Shard, after string) (Reader, error) {
	for i := range m.shards {
		if m.shards[i].ID != shard.ID {
			continue
		}
		next := 0
		if after != "" {
			n, err := strconv.Atoi(after)
			if err != nil {
				return nil, configErr("memory shard %s: position %q is not an index", shard.ID, after)
			}
			next = n + 1
		}
		return &memoryReader{src: m, sh: &m.shards[i], next: next, dec: NewDecoder(m.format)}, nil
	}
	return nil, configErr("memory source has no shard %q", shard.ID)
}

type memoryReader struct {
	src  *Memory
	sh   *MemoryShard
	next int
	dec  *Decoder
}

func (r *memoryReader) len() int {
	if r.sh.Data != nil {
		return len(r.sh.Data)
	}
	return len(r.sh.Values)
}

func (r *memoryReader) Read(ctx context.Context, buf []Record) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(buf) && r.next < r.len() {
		var v any
		if r.sh.Data != nil {
			var err error
			if v, err = r.dec.Decode(r.sh.Data[r.next]); err != nil {
				if n > 0 {
					return n, nil
				}
				return 0, &RecordError{Shard: r.sh.ID, Position: strconv.Itoa(r.next), Err: err}
			}
		} else {
			v = r.sh.Values[r.next]
		}
		buf[n] = Record{Value: v, Position: strconv.Itoa(r.next), Arrival: r.sh.Arrival}
		n++
		r.next++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *memoryReader) Children() []Shard {
	var out []Shard
	for _, s := range r.src.shardList() {
		if slices.Contains(s.Parents, r.sh.ID) {
			out = append(out, s)
		}
	}
	return out
}

func (r *memoryReader) Close() error { return nil }
