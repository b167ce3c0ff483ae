package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sinks/epochs"
)

// ProgressTable holds, per job, sink and task, the last epoch committed.
const ProgressTable = "runnel_sink_progress"

// ErrConfig marks a PostgreSQL sink configuration error.
var ErrConfig = fmt.Errorf("%w: postgres", sinks.ErrConfig)

// Config configures a PostgreSQL sink.
type Config struct {
	// DSN is a libpq connection string or URL without a password.
	DSN string
	// Table is the target, optionally schema-qualified (schema.table).
	Table string
	// Key lists the columns of an upsert: a row replaces the row with
	// the same key. Empty: every row is inserted.
	Key []string
	// CreateTable creates the table from Columns when it is missing, with
	// Key as its primary key.
	CreateTable bool
	// Columns are the rows' columns, when the job knows them (window
	// results); otherwise the table's own columns are used.
	Columns []sinks.Column
	// Job and Sink name the progress row.
	Job, Sink string
	// Logger gets a WARN line for each commit retried after the
	// connection broke, and for a transaction the database leaves
	// unanswered (sinks.Watchdog); default slog.Default().
	Logger *slog.Logger
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Validate checks the configuration without connecting.
func (c *Config) Validate() error {
	if c.DSN == "" {
		return fmt.Errorf("%w: dsn is required", ErrConfig)
	}
	if hasPassword(c.DSN) {
		return fmt.Errorf("%w: dsn holds a password; put it in PGPASSWORD or a passfile (~/.pgpass) of the server instead", ErrConfig)
	}
	parts := strings.Split(c.Table, ".")
	if len(parts) > 2 {
		return fmt.Errorf("%w: table %q: use TABLE or SCHEMA.TABLE", ErrConfig, c.Table)
	}
	for _, p := range append(parts, c.Key...) {
		if !identRE.MatchString(p) {
			return fmt.Errorf("%w: %q is not a plain SQL identifier (letters, digits, _)", ErrConfig, p)
		}
	}
	if c.Job == "" || c.Sink == "" {
		return fmt.Errorf("%w: job and sink names are required", ErrConfig)
	}
	return nil
}

func hasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		_, set := u.User.Password()
		return set || u.Query().Has("password")
	}
	return regexp.MustCompile(`(^|\s)password\s*=`).MatchString(dsn)
}

// Sink writes rows into a table; see the package comment.
type Sink struct {
	cfg  Config
	conn *pgx.Conn
	// cols are the target's columns in order, with their SQL types.
	cols []tableColumn
	txn  *epochs.Txn
	// opened: OpenState returned, and a commit that loses its
	// connection retries.
	opened bool
	// watch says the transactions the database holds unanswered.
	watch *sinks.Watchdog
	// inc is the incarnation whose progress rows the commits of
	// checkpoint epochs use (epochs.Txn.Incarnation); "" on scale-out
	// workers and for a legacy record.
	inc string
}

// progressJob is the job column of the sink's progress rows: the job's
// name, with the incarnation after an @ (see sinks/epochs) once it has
// one, so a fresh start's epochs, counted from 1 again, are not taken
// for an earlier incarnation's.
func (s *Sink) progressJob() string {
	if s.inc == "" {
		return s.cfg.Job
	}
	return s.cfg.Job + "@" + s.inc
}

type tableColumn struct {
	name, sqlType string
}

var _ sinks.Transactional = (*Sink)(nil)

// New checks cfg and connects. It creates the progress table, and the
// target when CreateTable is set and Columns are known.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres sink %s: connect: %w", cfg.Sink, err)
	}
	s := &Sink{cfg: cfg, conn: conn, watch: sinks.NewWatchdog(cfg.Job, cfg.Sink, "postgres", "table "+cfg.Table, cfg.Logger)}
	if err := s.prepare(ctx); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("postgres sink %s: %w", cfg.Sink, err)
	}
	return s, nil
}

func (s *Sink) prepare(ctx context.Context) error {
	err := s.withDDLLock(ctx, `CREATE TABLE IF NOT EXISTS `+ProgressTable+` (
		job text NOT NULL, sink text NOT NULL, task text NOT NULL, epoch bigint NOT NULL,
		PRIMARY KEY (job, sink, task))`)
	if err != nil {
		return fmt.Errorf("create %s: %w", ProgressTable, err)
	}
	if err := s.loadColumns(ctx); err != nil {
		return err
	}
	if len(s.cols) == 0 && s.cfg.CreateTable && len(s.cfg.Columns) > 0 {
		if err := s.createTable(ctx, s.cfg.Columns); err != nil {
			return err
		}
	}
	return nil
}

// loadColumns reads the target's columns; none when it does not exist.
func (s *Sink) loadColumns(ctx context.Context) error {
	rows, err := s.conn.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, s.cfg.Table)
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", s.cfg.Table, err)
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tableColumn, error) {
		var c tableColumn
		err := r.Scan(&c.name, &c.sqlType)
		return c, err
	})
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", s.cfg.Table, err)
	}
	s.cols = cols
	return nil
}

var sqlTypes = map[sinks.ColumnType]string{
	sinks.Timestamp: "timestamptz", sinks.Int64: "bigint", sinks.Float64: "double precision",
	sinks.String: "text", sinks.Bool: "boolean", sinks.JSON: "jsonb", sinks.Struct: "jsonb",
}

func (s *Sink) createTable(ctx context.Context, cols []sinks.Column) error {
	var defs []string
	for _, c := range cols {
		if !identRE.MatchString(c.Name) {
			return fmt.Errorf("create table %s: column %q is not a plain SQL identifier", s.cfg.Table, c.Name)
		}
		defs = append(defs, quote(c.Name)+" "+sqlTypes[c.Type])
	}
	if len(s.cfg.Key) > 0 {
		defs = append(defs, "PRIMARY KEY ("+quoteAll(s.cfg.Key)+")")
	}
	if err := s.withDDLLock(ctx, "CREATE TABLE IF NOT EXISTS "+quoteTable(s.cfg.Table)+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return fmt.Errorf("create table %s: %w", s.cfg.Table, err)
	}
	return s.loadColumns(ctx)
}

// Write stages rows until the next PreCommit in a checkpointed job, and
// otherwise writes them in a transaction of their own.
func (s *Sink) Write(ctx context.Context, rows []sinks.Row) error {
	if s.txn != nil {
		if err := s.txn.Err(); err != nil {
			return err
		}
		for _, r := range rows {
			s.txn.Stage(epochs.Row{Value: r.Value})
		}
		return nil
	}
	vals := make([]any, len(rows))
	for i, r := range rows {
		vals[i] = r.Value
	}
	return s.commitRows(ctx, 0, vals)
}

// Close releases the connection. Staged rows not yet committed belong to
// no completed checkpoint: the restarted job replays them.
func (s *Sink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.conn.Close(ctx)
}

// commitRows merges vals into the table in one transaction; with epoch >
// 0 it first checks and then advances the progress row, so an epoch
// already committed is skipped.
func (s *Sink) commitRows(ctx context.Context, epoch uint64, vals []any) error {
	// Watched with its retries: a database that does not answer, or
	// refuses connections, for StallAfter is listed as a stalled call.
	call := fmt.Sprintf("the transaction of %d rows", len(vals))
	if epoch > 0 {
		call = fmt.Sprintf("the transaction of checkpoint epoch %d (%d rows)", epoch, len(vals))
	}
	defer s.watch.Watch(call)()
	if epoch == 0 {
		_, err := s.commitProgress(ctx, "", nil, 0, vals)
		return err
	}
	accept := func(done int64) bool { return done < int64(epoch) }
	if !s.opened {
		// OpenState's recovery: the job's start waits on it, and the
		// server's start on the job's, so it fails at once instead.
		_, err := s.commitProgress(ctx, "0", accept, int64(epoch), vals)
		return err
	}
	wait, deadline := 100*time.Millisecond, time.Now().Add(ReconnectFor)
	for {
		err := s.reconnect(ctx)
		if err == nil {
			_, err = s.commitProgress(ctx, "0", accept, int64(epoch), vals)
			if err == nil || !s.conn.IsClosed() {
				return err
			}
		}
		// The connection broke (or could not be made): the transaction
		// either committed or not, and the progress row it holds says
		// which, so trying again on a new connection cannot write the
		// epoch twice.
		if time.Now().After(deadline) {
			return err
		}
		log := s.cfg.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("PostgreSQL connection lost; retrying the commit", "job", s.cfg.Job, "sink", s.cfg.Sink,
			"epoch", epoch, "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// ReconnectFor is how long the commit of a checkpoint epoch keeps trying
// while the database is unreachable or ends the sink's connection (a
// restart, a failover, a terminated backend), before it fails the sink.
const ReconnectFor = 30 * time.Second

// reconnect replaces a connection that broke with a new one.
func (s *Sink) reconnect(ctx context.Context) error {
	if !s.conn.IsClosed() {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, s.cfg.DSN)
	if err != nil {
		return fmt.Errorf("postgres sink %s: connect again: %w", s.cfg.Sink, err)
	}
	s.conn = conn
	return nil
}

// commitProgress merges vals into the table in one transaction. With a
// task, it first locks the task's progress row: when accept refuses its
// value, nothing is written; otherwise the row is set to to in the same
// transaction. It returns the progress row's value after the transaction.
func (s *Sink) commitProgress(ctx context.Context, task string, accept func(done int64) bool, to int64, vals []any) (int64, error) {
	if len(s.cols) == 0 {
		if !s.cfg.CreateTable {
			return 0, fmt.Errorf("postgres sink %s: table %s does not exist (set create_table: true to create it)", s.cfg.Sink, s.cfg.Table)
		}
		rows := make([]sinks.Row, len(vals))
		for i, v := range vals {
			rows[i].Value = v
		}
		if err := s.createTable(ctx, sinks.InferColumns(rows)); err != nil {
			return 0, fmt.Errorf("postgres sink %s: %w", s.cfg.Sink, err)
		}
	}
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres sink %s: begin: %w", s.cfg.Sink, err)
	}
	defer tx.Rollback(ctx)
	if task != "" {
		done, err := s.lockProgress(ctx, tx, task)
		if err != nil {
			return 0, err
		}
		if !accept(done) {
			return done, nil // committed before a crash, or by another writer: skip the replay
		}
	}
	if err := s.merge(ctx, tx, vals); err != nil {
		return 0, fmt.Errorf("postgres sink %s: progress %d: %w", s.cfg.Sink, to, err)
	}
	if task != "" {
		if _, err := tx.Exec(ctx, `UPDATE `+ProgressTable+` SET epoch = $4 WHERE job = $1 AND sink = $2 AND task = $3`,
			s.progressJob(), s.cfg.Sink, task, to); err != nil {
			return 0, fmt.Errorf("postgres sink %s: advance progress of %s to %d: %w", s.cfg.Sink, task, to, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres sink %s: commit progress %d: %w", s.cfg.Sink, to, err)
	}
	return to, nil
}

// lockProgress returns the task's progress, holding its row locked until
// tx ends (a second writer of the same task waits).
func (s *Sink) lockProgress(ctx context.Context, tx pgx.Tx, task string) (int64, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO `+ProgressTable+` (job, sink, task, epoch) VALUES ($1, $2, $3, 0)
		ON CONFLICT DO NOTHING`, s.progressJob(), s.cfg.Sink, task); err != nil {
		return 0, fmt.Errorf("postgres sink %s: progress row: %w", s.cfg.Sink, err)
	}
	var done int64
	if err := tx.QueryRow(ctx, `SELECT epoch FROM `+ProgressTable+` WHERE job = $1 AND sink = $2 AND task = $3 FOR UPDATE`,
		s.progressJob(), s.cfg.Sink, task).Scan(&done); err != nil {
		return 0, fmt.Errorf("postgres sink %s: progress row: %w", s.cfg.Sink, err)
	}
	return done, nil
}

// merge copies vals into a temporary table and inserts (or upserts) them
// into the target.
func (s *Sink) merge(ctx context.Context, tx pgx.Tx, vals []any) error {
	if len(s.cfg.Key) > 0 {
		vals = lastPerKey(vals, s.cfg.Key)
	}
	names := make([]string, len(s.cols))
	for i, c := range s.cols {
		names[i] = c.name
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS runnel_stage (LIKE `+quoteTable(s.cfg.Table)+`) ON COMMIT DELETE ROWS`); err != nil {
		return fmt.Errorf("create the staging table: %w", err)
	}
	rows := make([][]any, 0, len(vals))
	for i, v := range vals {
		row, err := s.toRow(v)
		if err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
		rows = append(rows, row)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"runnel_stage"}, names, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy into the staging table: %w", err)
	}
	q := "INSERT INTO " + quoteTable(s.cfg.Table) + " (" + quoteAll(names) + ") SELECT " + quoteAll(names) + " FROM runnel_stage"
	if len(s.cfg.Key) > 0 {
		var sets []string
		for _, n := range names {
			if !slices.Contains(s.cfg.Key, n) {
				sets = append(sets, quote(n)+" = EXCLUDED."+quote(n))
			}
		}
		q += " ON CONFLICT (" + quoteAll(s.cfg.Key) + ")"
		if len(sets) == 0 {
			q += " DO NOTHING"
		} else {
			q += " DO UPDATE SET " + strings.Join(sets, ", ")
		}
	}
	if _, err := tx.Exec(ctx, q); err != nil {
		return fmt.Errorf("merge into %s: %w", s.cfg.Table, err)
	}
	return nil
}

// lastPerKey keeps the last row of each key, in the order of those rows:
// an upsert statement may not touch one row twice.
func lastPerKey(vals []any, key []string) []any {
	last := map[string]int{}
	for i, v := range vals {
		last[keyOf(v, key)] = i
	}
	out := vals[:0:0]
	for i, v := range vals {
		if last[keyOf(v, key)] == i {
			out = append(out, v)
		}
	}
	return out
}

func keyOf(v any, key []string) string {
	m, _ := v.(map[string]any)
	parts := make([]any, len(key))
	for i, k := range key {
		parts[i] = m[k]
	}
	b, _ := json.Marshal(parts)
	return string(b)
}

// toRow maps a row's fields onto the table's columns; a missing field is
// NULL.
func (s *Sink) toRow(v any) ([]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		if len(s.cols) == 1 {
			m = map[string]any{s.cols[0].name: v}
		} else {
			return nil, fmt.Errorf("is a %T, not an object with the table's columns", v)
		}
	}
	out := make([]any, len(s.cols))
	for i, c := range s.cols {
		x, err := toSQL(m[c.name], c.sqlType)
		if err != nil {
			return nil, fmt.Errorf("column %s (%s): %w", c.name, c.sqlType, err)
		}
		out[i] = x
	}
	return out, nil
}

// toSQL converts a decoded JSON-like value to what pgx encodes for a
// column of type t.
func toSQL(v any, t string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch {
	case strings.HasPrefix(t, "timestamp"):
		switch x := v.(type) {
		case float64:
			return time.UnixMilli(int64(x)).UTC(), nil
		case int64:
			return time.UnixMilli(x).UTC(), nil
		case string:
			return time.Parse(time.RFC3339Nano, x)
		}
	case t == "bigint" || t == "integer" || t == "smallint":
		switch x := v.(type) {
		case float64:
			if x != math.Trunc(x) {
				return nil, fmt.Errorf("%v is not an integer", x)
			}
			return int64(x), nil
		case int64, int:
			return x, nil
		}
	case t == "double precision" || t == "real" || strings.HasPrefix(t, "numeric"):
		switch x := v.(type) {
		case float64, int64, int:
			return x, nil
		}
	case t == "boolean":
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case t == "jsonb" || t == "json":
		b, err := json.Marshal(v)
		return string(b), err
	case t == "text" || strings.HasPrefix(t, "character"):
		if str, ok := v.(string); ok {
			return str, nil
		}
		b, err := json.Marshal(v)
		return string(b), err
	default:
		return v, nil
	}
	return nil, fmt.Errorf("cannot store a %T", v)
}

func quote(id string) string { return `"` + id + `"` }

func quoteAll(ids []string) string { return joinQuoted(ids, ", ") }

func joinQuoted(ids []string, sep string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = quote(id)
	}
	return strings.Join(q, sep)
}

func quoteTable(t string) string { return joinQuoted(strings.Split(t, "."), ".") }
