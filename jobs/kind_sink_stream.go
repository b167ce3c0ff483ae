package jobs

import (
	"fmt"

	"github.com/runnel-dev/runnel/sinks"
)

// SinkStream is the sink kind that writes results to a Runnel stream.
const SinkStream = "stream"

// StreamSink writes one JSON record per result to a stream; the partition
// key is the window key.
type StreamSink struct {
	Name string `yaml:"name"`
	// Shards is the shard count used if the stream is created. Default 1.
	Shards int `yaml:"shards"`
}

func init() {
	registerSink(&sinkKind{
		Name: SinkStream,
		Rank: 20,
		Fields: []Field{
			{"", "mapping", "—", "one JSON record per result; partition key = the window key"},
			{"name", "string", "required", "stream name"},
			{"shards", "int", "1", "1–1024; shard count if the stream is created"},
		},
		Has: func(s *Sink) bool { return s.Stream != nil },
		Parse: func(p *parser, f fieldMap, s *Sink) {
			if m, ok := p.sub(f, "stream"); ok {
				s.Stream = &StreamSink{Name: p.str(m, "name"), Shards: int(p.integer(m, "shards", true))}
			}
		},
		Validate: func(v *validator, s *Sink, p string) {
			st := s.Stream
			switch {
			case st.Name == "":
				v.required(p+".stream.name", "stream: {name: results}")
			case !validStream(st.Name):
				v.add(p+".stream.name", CodeInvalid, fmt.Sprintf("%q is not a valid stream name", st.Name), "1–128 of A-Z, a-z, 0-9, _ . - (not . or ..)")
			}
			switch {
			case st.Shards == 0:
				st.Shards = 1
			case st.Shards < 1 || st.Shards > maxShards:
				v.add(p+".stream.shards", CodeInvalid, fmt.Sprintf("%d is out of range", st.Shards), "1–1024")
			}
		},
		Stream: func(s *Sink, p string) (string, string) { return s.Stream.Name, p + ".stream.name" },
		Build: func(b *builder, s *Sink, cols []sinks.Column) (sinks.Sink, error) {
			return b.streamSink(s.Stream.Name, s.Stream.Shards, cols)
		},
	})
}

// streamSink makes a stream sink, creating the stream if missing; dead
// letters of operators go through it too.
func (b *builder) streamSink(name string, shards int, cols []sinks.Column) (sinks.Sink, error) {
	if b.env.Store == nil {
		return nil, fmt.Errorf("a stream sink needs a server (or runnel run --data DIR)")
	}
	if b.restoreOnly {
		// A stream deleted since fails OpenState with
		// sinks.ErrStagedTargetGone rather than being created again.
		return sinks.NewStream(sinks.StreamConfig{Store: b.env.Store, Stream: name, Columns: cols, Logger: b.env.Logger})
	}
	if err := ensureStream(b.env.Store, name, shards); err != nil {
		return nil, err
	}
	return sinks.NewStream(sinks.StreamConfig{Store: b.env.Store, Stream: name, Columns: cols, Logger: b.env.Logger})
}
