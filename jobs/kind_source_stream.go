package jobs

import (
	"fmt"

	"github.com/runnel-dev/runnel/sources"
)

// SourceStream is the source kind that reads a Runnel stream.
const SourceStream = "stream"

func init() {
	registerSource(&sourceKind{
		Name: SourceStream,
		Rank: 10,
		Fields: []Field{
			{"", "string", "—", "stream name: 1–128 of `A-Za-z0-9_.-`; created with `shards` shards if missing"},
		},
		Has:     func(s *Source) bool { return s.Stream != "" },
		Parse:   func(p *parser, f fieldMap, s *Source) { s.Stream = p.str(f, "stream") },
		Stream:  func(s *Source) string { return s.Stream },
		Start:   true,
		OnError: true,
		Formats: []string{"json", "text", "bytes"},
		Validate: func(v *validator, s *Source) {
			if !validStream(s.Stream) {
				v.add("source.stream", CodeInvalid, fmt.Sprintf("%q is not a valid stream name", s.Stream), "1–128 of A-Z, a-z, 0-9, _ . - (not . or ..)")
			}
		},
		Build: func(b *builder, s *Source) (sources.Source, error) {
			if b.env.Store == nil {
				return nil, fmt.Errorf("job %s: source.stream needs a server (or runnel run --data DIR)", b.spec.Name)
			}
			if err := ensureStream(b.env.Store, s.Stream, s.Shards); err != nil {
				return nil, err
			}
			if dl := s.OnError.DeadLetter; s.OnError.Policy == OnErrorDeadLetter {
				if err := ensureStream(b.env.Store, dl, 1); err != nil {
					return nil, fmt.Errorf("job %s: source dead letters: %w", b.spec.Name, err)
				}
			}
			src, err := sources.NewStream(sources.StreamConfig{Store: b.env.Store, Stream: s.Stream,
				Start: s.Start.Position, Timestamp: s.Start.AtTimestamp, Format: sources.Format(s.Format),
				RawJSON: b.rawJSON(), MaxDepth: sources.MaxJSONDepth, OnError: b.badRecords()})
			return src, wrapSourceErr(b, err)
		},
	})
}
