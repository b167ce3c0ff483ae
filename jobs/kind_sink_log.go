package jobs

import (
	"os"

	"github.com/runnel-dev/runnel/sinks"
)

// SinkLog is the sink kind that prints results as JSON lines.
const SinkLog = "log"

// LogSink prints results as JSON lines (to stdout under runnel run).
type LogSink struct{}

func init() {
	registerSink(&sinkKind{
		Name: SinkLog,
		Rank: 40,
		Fields: []Field{
			{"", "empty mapping", "—", "`{}`: print results as JSON lines"},
		},
		Has: func(s *Sink) bool { return s.Log != nil },
		Parse: func(p *parser, f fieldMap, s *Sink) {
			if _, ok := p.optionalMapping(f, "log"); ok {
				s.Log = &LogSink{}
			}
		},
		Build: func(b *builder, s *Sink, cols []sinks.Column) (sinks.Sink, error) {
			w := b.env.Log
			if w == nil {
				w = os.Stdout
			}
			return sinks.NewLog(w, s.ID+": ", cols), nil
		},
	})
}
