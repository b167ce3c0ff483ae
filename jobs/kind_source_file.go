package jobs

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/runnel-dev/runnel/sources"
)

// SourceFile is the source kind that reads bounded local files.
const SourceFile = "file"

func init() {
	registerSource(&sourceKind{
		Name: SourceFile,
		Rank: 20,
		Fields: []Field{
			{"", "string or list of strings", "—", "path(s) of bounded JSON-lines or CSV files, one shard each (`runnel run`)"},
		},
		Has:      func(s *Source) bool { return len(s.File) > 0 },
		Parse:    func(p *parser, f fieldMap, s *Source) { s.File = p.names(f, "file", true) },
		NoShards: "a file source has one shard per file",
		Formats:  []string{"jsonl", "csv"},
		DefaultFormat: func(s *Source) string {
			if strings.EqualFold(filepath.Ext(s.File[0]), ".csv") {
				return "csv"
			}
			return "jsonl"
		},
		Files: func(s *Source) []fileRef {
			var out []fileRef
			for i, p := range s.File {
				out = append(out, fileRef{Path: p, Field: fmt.Sprintf("source.file[%d]", i)})
			}
			return out
		},
		Build: func(b *builder, s *Source) (sources.Source, error) {
			src, err := sources.NewFile(sources.FileConfig{Paths: s.File, Format: s.Format, Root: b.env.Files})
			return src, wrapSourceErr(b, err)
		},
	})
}
