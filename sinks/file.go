package sinks

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
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
}

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

// File writes results to one file, created (truncated) by NewFile. Arrow
// and Parquet files are complete only after Close; a job closes its sinks
// when it finishes or is stopped. With no rows and no configured columns
// a columnar file gets the bare window schema (window_start, window_end,
// key).
type File struct {
	cfg    FileConfig
	format string
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
	f, err := os.Create(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("create file sink: %w", err)
	}
	s := &File{cfg: cfg, format: cfg.format(), f: f, mem: memory.DefaultAllocator, cols: cfg.Columns}
	s.bw = bufio.NewWriterSize(f, 256<<10)
	return s, nil
}

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
				return fmt.Errorf("file sink %s: %w", s.cfg.Path, err)
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
		return fmt.Errorf("file sink %s: %w", s.cfg.Path, err)
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
		return fmt.Errorf("file sink %s: start %s writer: %w", s.cfg.Path, s.format, err)
	}
	return nil
}

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
		return fmt.Errorf("close file sink %s: %w", s.cfg.Path, err)
	}
	return nil
}
