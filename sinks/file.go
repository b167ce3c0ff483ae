package sinks

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/runnel-dev/runnel/internal/confine"
	"github.com/runnel-dev/runnel/state"
)

// File sink formats.
const (
	FileJSONLines = "jsonl"
	FileArrow     = "arrow"   // Arrow IPC file format
	FileParquet   = "parquet" // via arrow-go's pqarrow, zstd-compressed
)

// FileConfig configures a file sink.
type FileConfig struct {
	Path string
	// Format is jsonl, arrow or parquet; empty picks by extension
	// (.arrow/.ipc/.feather → arrow, .parquet → parquet, else jsonl).
	Format string
	// Columns fix the schema; nil infers it from the first batch.
	Columns []Column
	// Root, when set, confines Path beneath it (a server's files root)
	// and the sink never truncates a file: a new job refuses a Path that
	// exists (ErrFileExists). Nil creates or truncates Path as given
	// (runnel run).
	Root *confine.Root
	// Resume says the job restores from a checkpoint or savepoint, so a
	// file already at Path is its own earlier output: JSON lines are
	// appended to it (rows after the checkpoint may appear twice: the
	// file sink is at-least-once), a columnar file, which cannot be
	// appended to, is kept and the rows go to the next free PATH-N.EXT
	// beside it. Only with Root.
	Resume bool
}

// ErrFileExists is the error of a new confined file sink whose file is
// already there.
var ErrFileExists = errors.New("sinks: the file sink's file already exists")

// Validate checks the configuration.
func (c FileConfig) Validate() error {
	if c.Path == "" {
		return configErr("file sink: no path")
	}
	switch c.Format {
	case "", FileJSONLines, FileArrow, FileParquet:
	default:
		return configErr("file sink %s: format %q: use jsonl, arrow or parquet", c.Path, c.Format)
	}
	if c.Root != nil {
		if err := confine.CheckPath(c.Path); err != nil {
			return fmt.Errorf("file sink: %w", err)
		}
	}
	return validateColumns(c.Columns)
}

func (c FileConfig) format() string {
	if c.Format != "" {
		return c.Format
	}
	switch strings.ToLower(filepath.Ext(c.Path)) {
	case ".arrow", ".ipc", ".feather":
		return FileArrow
	case ".parquet":
		return FileParquet
	}
	return FileJSONLines
}

// File writes results to one file, created by NewFile (see
// FileConfig.Root and Resume for when it is truncated or appended to). In a
// job that checkpoints, a File takes part in each checkpoint to make its
// rows durable: at the barrier (PreCommit) it writes out what it buffered
// and syncs the file, so a JSON lines file holds every row before the
// checkpoint, and an Arrow file every batch (its footer comes at Close).
// It stages nothing, so it is at-least-once (see FileConfig.Resume).
// Parquet buffers its row group until it is full or the file closes. Arrow
// and Parquet files are complete only after Close; a job closes its sinks
// when it finishes or is stopped. With no rows and no configured columns
// a columnar file gets the bare window schema (window_start, window_end,
// key).
type File struct {
	cfg    FileConfig
	format string
	path   string // the file written: Path, or a part beside it
	f      *os.File
	bw     *bufio.Writer
	buf    bytes.Buffer
	mem    memory.Allocator
	cols   []Column
	schema *arrow.Schema
	ipcw   *ipc.FileWriter
	pqw    *pqarrow.FileWriter
}

// NewFile validates cfg and creates the file.
func NewFile(cfg FileConfig) (*File, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &File{cfg: cfg, format: cfg.format(), path: cfg.Path, mem: memory.DefaultAllocator, cols: cfg.Columns}
	var err error
	switch {
	case cfg.Root == nil:
		s.f, err = os.Create(cfg.Path)
	case !cfg.Resume:
		s.f, err = cfg.Root.OpenFile(cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%w: %s (a job never overwrites a file that was there before it: remove the file or choose another path)", ErrFileExists, cfg.Path)
		}
	case s.format == FileJSONLines:
		s.f, err = cfg.Root.OpenFile(cfg.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			err = endLine(s.f)
		}
	default:
		s.f, s.path, err = createPart(cfg.Root, cfg.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("create file sink: %w", err)
	}
	s.bw = bufio.NewWriterSize(s.f, 256<<10)
	return s, nil
}

// endLine ends a line a crash cut short, so appended rows start on their
// own line (the cut row stays, for someone to see).
func endLine(f *os.File) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, fi.Size()-1); err != nil {
		return err
	}
	if last[0] != '\n' {
		_, err = f.Write([]byte{'\n'})
	}
	return err
}

// maxParts bounds the search for a free part name.
const maxParts = 10000

// createPart creates path, or when it exists the first free PATH-N.EXT.
func createPart(root *confine.Root, path string) (*os.File, string, error) {
	ext := filepath.Ext(path)
	stem := strings.TrimSuffix(path, ext)
	name := path
	for n := 1; n <= maxParts; n++ {
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			return f, name, err
		}
		name = stem + "-" + strconv.Itoa(n) + ext
	}
	return nil, "", fmt.Errorf("%w: %s and %d parts beside it", ErrFileExists, path, maxParts)
}

// Path returns the file the sink writes: FileConfig.Path, or the part
// beside it that a resumed columnar sink started.
func (s *File) Path() string { return s.path }

// Write appends rows.
func (s *File) Write(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	if s.format == FileJSONLines {
		s.buf.Reset()
		cols := s.cols
		if cols == nil {
			cols = WindowColumns()
		}
		for _, r := range rows {
			if err := appendJSONRow(&s.buf, r.Value, cols); err != nil {
				return fmt.Errorf("file sink %s: %w", s.path, err)
			}
			s.buf.WriteByte('\n')
		}
		_, err := s.bw.Write(s.buf.Bytes())
		return err
	}
	if err := s.open(rows); err != nil {
		return err
	}
	rec := toRecordBatch(s.mem, s.schema, s.cols, rows)
	defer rec.Release()
	var err error
	if s.ipcw != nil {
		err = s.ipcw.Write(rec)
	} else {
		err = s.pqw.WriteBuffered(rec)
	}
	if err != nil {
		return fmt.Errorf("file sink %s: %w", s.path, err)
	}
	return nil
}

// open starts the columnar writer once the schema is known.
func (s *File) open(rows []Row) error {
	if s.schema != nil {
		return nil
	}
	if s.cols == nil {
		s.cols = InferColumns(rows)
	}
	s.schema = arrowSchema(s.cols)
	var err error
	if s.format == FileArrow {
		s.ipcw, err = ipc.NewFileWriter(s.bw, ipc.WithSchema(s.schema), ipc.WithAllocator(s.mem))
	} else {
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd),
			parquet.WithMaxRowGroupLength(64<<10), parquet.WithAllocator(s.mem))
		s.pqw, err = pqarrow.NewFileWriter(s.schema, s.bw, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	}
	if err != nil {
		return fmt.Errorf("file sink %s: start %s writer: %w", s.path, s.format, err)
	}
	return nil
}

// OpenState does nothing: a File keeps no state in checkpoints.
func (s *File) OpenState(ctx context.Context, sp *state.Space) error { return nil }

// PreCommit writes out the rows buffered since the last checkpoint and
// syncs the file (a Parquet file's open row group stays in memory).
func (s *File) PreCommit(ctx context.Context, epoch uint64) error {
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("file sink %s: write at checkpoint %d: %w", s.path, epoch, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("file sink %s: sync at checkpoint %d: %w", s.path, epoch, err)
	}
	return nil
}

// Commit does nothing: the rows were written at PreCommit.
func (s *File) Commit(ctx context.Context, epoch uint64) error { return nil }

// Close finishes the file (Arrow footer, Parquet metadata) and closes it.
func (s *File) Close() error {
	var err error
	if s.format != FileJSONLines {
		if s.schema == nil {
			if s.cols == nil {
				s.cols = WindowColumns()
			}
			err = s.open(nil)
		}
		if err == nil && s.ipcw != nil {
			err = s.ipcw.Close()
		}
		if err == nil && s.pqw != nil {
			err = s.pqw.Close()
		}
	}
	if ferr := s.bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close file sink %s: %w", s.path, err)
	}
	return nil
}
