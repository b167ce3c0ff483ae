package jobs

import (
	"fmt"

	"github.com/runnel-dev/runnel/sinks"
)

// SinkDashboard is the sink kind that keeps results for the web UI.
const SinkDashboard = "dashboard"

// DefaultDashboardRows is how many recent result rows a dashboard keeps.
const DefaultDashboardRows = 10000

const maxDashboardRows = 1_000_000

// DashboardSink keeps recent results for the web UI and results API.
type DashboardSink struct {
	// Title shown above the chart. Default: the sink id.
	Title string `yaml:"title"`
	// Rows is how many recent result rows are kept.
	Rows int `yaml:"rows"`
}

func init() {
	registerSink(&sinkKind{
		Name: SinkDashboard,
		Rank: 10,
		Fields: []Field{
			{"", "mapping", "—", "live results in the web UI and results API"},
			{"title", "string", "the sink id", "any text"},
			{"rows", "int", "10000", "1–1000000 recent rows kept"},
		},
		Has: func(s *Sink) bool { return s.Dashboard != nil },
		Parse: func(p *parser, f fieldMap, s *Sink) {
			if m, ok := p.optionalMapping(f, "dashboard"); ok {
				s.Dashboard = &DashboardSink{Title: p.str(m, "title"), Rows: int(p.integer(m, "rows", true))}
			}
		},
		Validate: func(v *validator, s *Sink, p string) {
			d := s.Dashboard
			if d.Title == "" {
				d.Title = s.ID
			}
			switch {
			case d.Rows == 0:
				d.Rows = DefaultDashboardRows
			case d.Rows < 1 || d.Rows > maxDashboardRows:
				v.add(p+".dashboard.rows", CodeInvalid, fmt.Sprintf("%d is out of range", d.Rows), "1–1000000")
			}
		},
		Build: func(b *builder, s *Sink, cols []sinks.Column) (sinks.Sink, error) {
			title := s.Dashboard.Title
			if title == "" {
				title = s.ID
			}
			d, err := sinks.NewDashboard(sinks.DashboardConfig{Title: title, MaxRows: s.Dashboard.Rows, Columns: cols})
			if err != nil {
				return nil, err
			}
			b.out.Dashboards[s.ID] = d
			return d, nil
		},
	})
}
