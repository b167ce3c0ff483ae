package sources

import (
	"bufio"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/crc32"
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
// is its line number (1-based; for CSV the line the row starts on) and,
// after a colon, a CRC-32C of the file's content up to and including the
// record (its lines, or a CSV file's header and rows as cells), in 8 hex
// digits: "12:5f3a09c2". A reader opened after a position resumes with the
// next line, and only if the file's content up to the position is still
// the same: a file appended to resumes, one replaced, rewritten or
// truncated is ErrFileChanged (CheckPositions finds it before a restore).
// A bare line number, as positions were before the checksum, resumes
// unchecked.
//
// CSV cells that are JSON numbers become float64, everything else stays a
// string; a row with a different number of cells than the header is an
// error naming the line.
type File struct {
	cfg FileConfig
}

var _ PositionChecker = (*File)(nil)

// ErrFileChanged marks a file whose content up to a position is not what
// it was when the position was read.
var ErrFileChanged = errors.New("sources: file changed since the position was read")

// castagnoli is the CRC-32C table of file positions.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

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

// Open opens the file of shard and skips to the line after after,
// checking on the way that the file's content up to there is the one the
// position was read from.
func (f *File) Open(ctx context.Context, shard Shard, after string) (Reader, error) {
	skip, want, check := 0, uint32(0), false
	if after != "" {
		line, sum, hasSum := strings.Cut(after, ":")
		n, err := strconv.Atoi(line)
		if err != nil || n < 0 {
			return nil, configErr("file %s: position %q is not a line number", shard.ID, after)
		}
		skip = n
		if hasSum {
			v, err := strconv.ParseUint(sum, 16, 32)
			if err != nil || len(sum) != 8 {
				return nil, configErr("file %s: position %q: %q is not a checksum of 8 hex digits", shard.ID, after, sum)
			}
			want, check = uint32(v), n > 0
		}
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
	r := &fileReader{path: shard.ID, f: fh, now: f.cfg.Now, skip: skip, want: want, check: check}
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
	// sum is the CRC-32C of the content read so far; want is the one
	// of the position opened after, to check while check is set.
	sum   uint32
	want  uint32
	check bool
	row   []byte // hashCells' buffer
}

// Separators of what a file position's checksum covers: a line's bytes
// and lineEnd (whatever ended the line), a CSV row's cells each followed
// by cellEnd, then rowEnd.
var lineEnd = []byte{'\n'}

const (
	cellEnd = 0x1f
	rowEnd  = 0x1e
)

// passed checks the position's checksum once the unit (a line, or a CSV
// header or row) starting on line was added to sum: the unit on the
// position's line must end exactly there with the position's checksum.
func (r *fileReader) passed(line int) error {
	if !r.check || line < r.skip {
		return nil
	}
	r.check = false
	if line > r.skip || r.sum != r.want {
		return r.changed()
	}
	return nil
}

// ended checks, at the end of the file, that the position's line was
// reached.
func (r *fileReader) ended() error {
	if r.check {
		r.check = false
		return r.changed()
	}
	return nil
}

func (r *fileReader) changed() error {
	return fmt.Errorf("%w: %s: its content up to line %d is not what it was when the job read it there (the file was replaced, rewritten or truncated)",
		ErrFileChanged, r.path, r.skip)
}

// hashCells adds a CSV header or row to sum: each cell, then cellEnd;
// rowEnd after the last.
func (r *fileReader) hashCells(cells []string) {
	b := r.row[:0]
	for _, c := range cells {
		b = append(append(b, c...), cellEnd)
	}
	r.row = append(b, rowEnd)
	r.sum = crc32.Update(r.sum, castagnoli, r.row)
}

// position is the Position of the record on line: the line and the
// checksum of the content up to it.
func (r *fileReader) position(line int) string {
	const hex = "0123456789abcdef"
	var b [32]byte
	p := strconv.AppendInt(b[:0], int64(line), 10)
	p = append(p, ':')
	for shift := 28; shift >= 0; shift -= 4 {
		p = append(p, hex[r.sum>>uint(shift)&0xf])
	}
	return string(p)
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
			if err := r.ended(); err != nil {
				return n, err
			}
			return n, io.EOF
		}
		r.line++
		b := r.lines.Bytes()
		r.sum = crc32.Update(r.sum, castagnoli, b)
		r.sum = crc32.Update(r.sum, castagnoli, lineEnd)
		if err := r.passed(r.line); err != nil {
			return n, err
		}
		if r.line <= r.skip || len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		v, err := r.dec.Decode(b)
		if err != nil {
			return n, &RecordError{Shard: r.path, Position: "line " + strconv.Itoa(r.line), Err: err}
		}
		buf[n] = Record{Value: v, Position: r.position(r.line), Arrival: arrival}
		n++
	}
	return n, nil
}

func (r *fileReader) readCSV(buf []Record, arrival int64) (int, error) {
	if r.header == nil {
		row, err := r.csv.Read()
		if err == io.EOF {
			return 0, cmp.Or(r.ended(), io.EOF)
		}
		if err != nil {
			return 0, fmt.Errorf("read %s header: %w", r.path, err)
		}
		r.hashCells(row)
		line, _ := r.csv.FieldPos(0)
		if err := r.passed(line); err != nil {
			return 0, err
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
			return n, cmp.Or(r.ended(), io.EOF)
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
		r.hashCells(row)
		if err := r.passed(line); err != nil {
			return n, err
		}
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
		buf[n] = Record{Value: m, Position: r.position(line), Arrival: arrival}
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

// Bindings is nil: a file's positions carry their checksum.
func (f *File) Bindings() map[string]string { return nil }

// CheckPositions reads each file up to its position and reports those
// whose content there is not what it was when the position was read
// (replaced, rewritten or truncated): they are read again from their
// first line. Positions without a checksum, and files that cannot be
// opened (Open says why), are left alone.
func (f *File) CheckPositions(ctx context.Context, positions, _ map[string]string) ([]PositionProblem, error) {
	var out []PositionProblem
	for _, path := range f.cfg.Paths {
		pos, ok := positions[path]
		if !ok || !strings.Contains(pos, ":") {
			continue
		}
		r, err := f.Open(ctx, Shard{ID: path}, pos)
		if err != nil {
			continue
		}
		err = r.(*fileReader).reachPosition(ctx)
		r.Close()
		switch {
		case errors.Is(err, ErrFileChanged):
			line, _, _ := strings.Cut(pos, ":")
			out = append(out, PositionProblem{Resume: map[string]string{path: ""},
				Problem: fmt.Sprintf("file %s changed since: its content up to line %s is not what the job read (it was replaced, rewritten or truncated); "+
					"the job reads it again from its first line", path, line)})
		case err != nil:
			return nil, fmt.Errorf("check the position in file %s: %w", path, err)
		}
	}
	return out, nil
}

// reachPosition reads until the position's checksum was checked: nil, or
// ErrFileChanged. Bad records on the way do not matter here.
func (r *fileReader) reachPosition(ctx context.Context) error {
	buf := make([]Record, 1)
	for r.check {
		_, err := r.Read(ctx, buf)
		if _, ok := errors.AsType[*RecordError](err); err != nil && !ok && err != io.EOF {
			return err
		}
		if err == io.EOF {
			return nil
		}
	}
	return nil
}

func (r *fileReader) Children() []Shard { return nil }

func (r *fileReader) Close() error { return r.f.Close() }
