package sources

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/internal/confine"
)

// File formats of FileConfig.Format.
const (
	FileJSONLines = "jsonl"
	FileCSV       = "csv"
)

// FileConfig configures a bounded file source.
type FileConfig struct {
	// Paths are the files to read; each file is one shard (its ID is the
	// path as given).
	Paths []string
	// Format is "jsonl" (one JSON value per line; blank lines skipped) or
	// "csv" (a header row naming the fields, then one object per row).
	// Empty picks by extension: .csv is csv, anything else jsonl.
	Format string
	// Now is the clock for arrival times; nil means time.Now.
	Now func() time.Time
	// Root, when set, confines the files beneath it (a server's files
	// root): Paths are relative to it, and each is resolved when its
	// shard opens, so a symlink swapped in after the job was submitted
	// cannot lead out either. Nil opens Paths as given (runnel run).
	Root *confine.Root
}

// Validate checks the configuration without touching the files.
func (c FileConfig) Validate() error {
	if len(c.Paths) == 0 {
		return configErr("file source: no paths")
	}
	switch c.Format {
	case "", FileJSONLines, FileCSV:
	default:
		return configErr("file source: format %q: use jsonl or csv", c.Format)
	}
	seen := map[string]bool{}
	for _, p := range c.Paths {
		if p == "" {
			return configErr("file source: empty path")
		}
		if seen[p] {
			return configErr("file source: %s listed twice", p)
		}
		if c.Root != nil {
			if err := confine.CheckPath(p); err != nil {
				return fmt.Errorf("file source: %w", err)
			}
		}
		seen[p] = true
	}
	return nil
}

func (c FileConfig) formatOf(path string) string {
	if c.Format != "" {
		return c.Format
	}
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return FileCSV
	}
	return FileJSONLines
}

// File is a bounded source of JSON-lines or CSV files. A record's Position
// is its line number (1-based; for CSV the line the row starts on), so a
// reader opened after position p resumes with the next line.
//
// CSV cells that are JSON numbers become float64, everything else stays a
// string; a row with a different number of cells than the header is an
// error naming the line.
type File struct {
	cfg FileConfig
}

// NewFile validates cfg and returns the source.
func NewFile(cfg FileConfig) (*File, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &File{cfg: cfg}, nil
}

// Bounded reports true.
func (f *File) Bounded() bool { return true }

// Shards returns one shard per path.
func (f *File) Shards(ctx context.Context) ([]Shard, error) {
	out := make([]Shard, len(f.cfg.Paths))
	for i, p := range f.cfg.Paths {
		out[i] = Shard{ID: p}
	}
	return out, nil
}

// Open opens the file of shard and skips to the line after after.
func (f *File) Open(ctx context.Context, shard Shard, after string) (Reader, error) {
	skip := 0
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil || n < 0 {
			return nil, configErr("file %s: position %q is not a line number", shard.ID, after)
		}
		skip = n
	}
	var fh *os.File
	var err error
	if f.cfg.Root != nil {
		fh, err = f.cfg.Root.OpenFile(shard.ID, os.O_RDONLY, 0)
	} else {
		fh, err = os.Open(shard.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("open file source: %w", err)
	}
	r := &fileReader{path: shard.ID, f: fh, now: f.cfg.Now, skip: skip}
	if f.cfg.formatOf(shard.ID) == FileCSV {
		r.csv = csv.NewReader(bufio.NewReaderSize(fh, 64<<10))
		r.csv.ReuseRecord = true
		r.csv.FieldsPerRecord = -1
	} else {
		r.lines = bufio.NewScanner(fh)
		r.lines.Buffer(make([]byte, 64<<10), 16<<20)
	}
	return r, nil
}

type fileReader struct {
	path   string
	f      *os.File
	now    func() time.Time
	skip   int
	lines  *bufio.Scanner
	line   int
	dec    JSONDecoder
	csv    *csv.Reader
	header []string
	eof    bool
}

func (r *fileReader) Read(ctx context.Context, buf []Record) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if r.eof {
		return 0, io.EOF
	}
	arrival := r.now().UnixMilli()
	n := 0
	var err error
	if r.csv != nil {
		n, err = r.readCSV(buf, arrival)
	} else {
		n, err = r.readLines(buf, arrival)
	}
	if err == io.EOF {
		r.eof = true
		if n > 0 {
			return n, nil
		}
	}
	return n, err
}

func (r *fileReader) readLines(buf []Record, arrival int64) (int, error) {
	n := 0
	for n < len(buf) {
		if !r.lines.Scan() {
			if err := r.lines.Err(); err != nil {
				return n, fmt.Errorf("read %s after line %d: %w", r.path, r.line, err)
			}
			return n, io.EOF
		}
		r.line++
		b := r.lines.Bytes()
		if r.line <= r.skip || len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		v, err := r.dec.Decode(b)
		if err != nil {
			return n, &RecordError{Shard: r.path, Position: "line " + strconv.Itoa(r.line), Err: err}
		}
		buf[n] = Record{Value: v, Position: strconv.Itoa(r.line), Arrival: arrival}
		n++
	}
	return n, nil
}

func (r *fileReader) readCSV(buf []Record, arrival int64) (int, error) {
	if r.header == nil {
		row, err := r.csv.Read()
		if err == io.EOF {
			return 0, io.EOF
		}
		if err != nil {
			return 0, fmt.Errorf("read %s header: %w", r.path, err)
		}
		r.header = make([]string, len(row))
		for i, h := range row {
			r.header[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		}
	}
	n := 0
	for n < len(buf) {
		row, err := r.csv.Read()
		if err == io.EOF {
			return n, io.EOF
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			return n, &RecordError{Shard: r.path, Position: "line " + strconv.Itoa(line), Err: err}
		}
		line, _ := r.csv.FieldPos(0)
		if line <= r.skip {
			continue
		}
		if len(row) != len(r.header) {
			return n, &RecordError{Shard: r.path, Position: "line " + strconv.Itoa(line),
				Err: fmt.Errorf("%d fields, the header has %d", len(row), len(r.header))}
		}
		m := make(map[string]any, len(row))
		for i, cell := range row {
			m[r.header[i]] = csvCell(cell)
		}
		buf[n] = Record{Value: m, Position: strconv.Itoa(line), Arrival: arrival}
		n++
	}
	return n, nil
}

// csvCell turns a cell into a float64 when it is a JSON number.
func csvCell(s string) any {
	t := strings.TrimSpace(s)
	if t == "" {
		return s
	}
	if c := t[0]; c == '-' || (c >= '0' && c <= '9') {
		p := jsonParser{data: []byte(t)}
		if v, err := p.number(); err == nil && p.pos == len(t) {
			return v
		}
	}
	return s
}

func (r *fileReader) Children() []Shard { return nil }

func (r *fileReader) Close() error { return r.f.Close() }
