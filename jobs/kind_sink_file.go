package jobs

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/runnel-dev/runnel/sinks"
)

// SinkFile is the sink kind that writes results to a local file.
const SinkFile = "file"

// File sink formats.
const (
	FileJSONL   = "jsonl"
	FileArrow   = "arrow"
	FileParquet = "parquet"
)

// FileSink writes results to a file.
type FileSink struct {
	Path string `yaml:"path"`
	// Format is jsonl, arrow (Arrow IPC file) or parquet. Default from the
	// extension: .arrow/.ipc/.feather → arrow, .parquet → parquet, else
	// jsonl.
	Format string `yaml:"format"`
}

func init() {
	registerSink(&sinkKind{
		Name: SinkFile,
		Rank: 30,
		Fields: []Field{
			{"", "mapping", "—", "results written to a file"},
			{"path", "string", "required", "file path"},
			{"format", "string", "from the extension: .arrow/.ipc/.feather → arrow, .parquet → parquet, else jsonl", "`jsonl`, `arrow`, `parquet`"},
		},
		Has: func(s *Sink) bool { return s.File != nil },
		Parse: func(p *parser, f fieldMap, s *Sink) {
			if m, ok := p.sub(f, "file"); ok {
				s.File = &FileSink{Path: p.str(m, "path"), Format: p.str(m, "format")}
			}
		},
		Validate: func(v *validator, s *Sink, p string) {
			f := s.File
			if f.Path == "" {
				v.required(p+".file.path", "file: {path: out.jsonl}")
			}
			allowed := []string{FileJSONL, FileArrow, FileParquet}
			switch {
			case f.Format == "":
				switch strings.ToLower(filepath.Ext(f.Path)) {
				case ".arrow", ".ipc", ".feather":
					f.Format = FileArrow
				case ".parquet":
					f.Format = FileParquet
				default:
					f.Format = FileJSONL
				}
			case !slices.Contains(allowed, f.Format):
				v.add(p+".file.format", CodeInvalid, fmt.Sprintf("%q is not a file format", f.Format), hintAllowed(f.Format, allowed))
			}
		},
		Files: func(s *Sink, p string) []fileRef { return []fileRef{{Path: s.File.Path, Field: p + ".file.path"}} },
		Build: func(b *builder, s *Sink, cols []sinks.Column) (sinks.Sink, error) {
			return sinks.NewFile(sinks.FileConfig{Path: s.File.Path, Format: s.File.Format, Columns: cols,
				Root: b.env.Files, Resume: b.env.Resume})
		},
	})
}
