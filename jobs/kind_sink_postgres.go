package jobs

import (
	"strings"

	"github.com/runnel-dev/runnel/sinks"
	pgsink "github.com/runnel-dev/runnel/sinks/postgres"
)

// SinkPostgres is the sink kind that writes results into a PostgreSQL
// table.
const SinkPostgres = "postgres"

// PostgresSink writes results into a table, exactly once with checkpoints.
type PostgresSink struct {
	DSN         string   `yaml:"dsn"`
	Table       string   `yaml:"table"`
	Key         []string `yaml:"key"`
	CreateTable bool     `yaml:"create_table"`
}

func init() {
	registerSink(&sinkKind{
		Name:      SinkPostgres,
		Rank:      110,
		Connector: true,
		Fields: []Field{
			{"", "mapping", "—", "a PostgreSQL table, exactly once with a progress row; see docs/connectors.md"},
			{"dsn", "string", "required", "libpq connection string or URL without a password (PGPASSWORD or ~/.pgpass)"},
			{"table", "string", "required", "`TABLE` or `SCHEMA.TABLE`"},
			{"key", "string or list of strings", "none (insert)", "columns of an upsert: a row replaces the row with the same key"},
			{"create_table", "bool", "false", "create the table from the results' columns if missing"},
		},
		Has: func(s *Sink) bool { return s.Postgres != nil },
		Parse: func(p *parser, f fieldMap, s *Sink) {
			if m, ok := p.sub(f, "postgres"); ok {
				s.Postgres = &PostgresSink{DSN: p.str(m, "dsn"), Table: p.str(m, "table"), Key: p.names(m, "key", true),
					CreateTable: p.flag(m, "create_table")}
			}
		},
		Validate: func(v *validator, s *Sink, p string) {
			pg := s.Postgres
			c := pgsink.Config{DSN: pg.DSN, Table: pg.Table, Key: pg.Key, Job: "j", Sink: "s"}
			if err := c.Validate(); err != nil {
				v.add(p+".postgres", CodeInvalid, strings.TrimPrefix(err.Error(), "sinks: invalid configuration: postgres: "), "see docs/connectors.md")
			}
		},
		Build: func(b *builder, s *Sink, cols []sinks.Column) (sinks.Sink, error) {
			pg := s.Postgres
			ctx, cancel := b.connectCtx()
			defer cancel()
			return pgsink.New(ctx, pgsink.Config{DSN: pg.DSN, Table: pg.Table, Key: pg.Key, CreateTable: pg.CreateTable,
				Columns: cols, Job: b.spec.Name, Sink: s.ID, Logger: b.env.Logger})
		},
	})
}
