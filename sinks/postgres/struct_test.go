package postgres

import (
	"context"
	"testing"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
)

// A struct column (the detect operator's explanation) becomes a jsonb
// column of a created table, holding the object, not its text in a string.
func TestStructColumnIsJSONB(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	cols := []sinks.Column{{Name: "key", Type: sinks.String}, {Name: "explanation", Type: sinks.Struct, Fields: []sinks.Column{
		{Name: "field", Type: sinks.String}, {Name: "direction", Type: sinks.String}, {Name: "z", Type: sinks.Float64}}}}
	j := newJob(t, Config{DSN: pg.DSN, Table: "scored", CreateTable: true, Columns: cols, Job: "j", Sink: "out"})
	j.Start()
	j.Epoch(1, true, sinks.Row{Key: "a", Value: map[string]any{"key": "a",
		"explanation": map[string]any{"field": "views", "direction": "high", "z": 18.9}}})
	conn := pg.Connect(t)
	defer conn.Close(context.Background())
	var typ, field string
	var z float64
	if err := conn.QueryRow(context.Background(),
		`SELECT pg_typeof(explanation)::text, explanation->>'field', (explanation->>'z')::float8 FROM scored`).Scan(&typ, &field, &z); err != nil {
		t.Fatal(err)
	}
	if typ != "jsonb" || field != "views" || z != 18.9 {
		t.Fatalf("explanation is %s with field %q, z %g; want jsonb with field views, z 18.9", typ, field, z)
	}
}
