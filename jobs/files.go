package jobs

import (
	"fmt"
	"path/filepath"

	"github.com/runnel-dev/runnel/internal/confine"
)

// FilesDirName is the files root's directory in a server's data directory
// unless configured otherwise.
const FilesDirName = "files"

// checkFilesBeneath reports, as a *SpecError naming line and field, every
// file path of s that could not lie beneath a files root: absolute paths
// and paths whose ".." leads out. Symlinks are resolved when the files
// open.
func (s *Spec) checkFilesBeneath() error {
	v := newValidator(s)
	bad := func(path, field string) {
		if confine.CheckPath(path) != nil {
			v.add(field, CodeInvalid, fmt.Sprintf("%q is outside the server's files root", path),
				"a server job's files are paths relative to its --files-root, e.g. out.jsonl; no absolute paths, no \"..\" leading out")
		}
	}
	for i, p := range s.Source.File {
		field := fmt.Sprintf("source.file[%d]", i)
		if s.info != nil {
			if _, ok := s.info.pos[field]; !ok {
				field = "source.file"
			}
		}
		bad(p, field)
	}
	for i, sk := range s.Sinks {
		if sk.File != nil {
			bad(sk.File.Path, fmt.Sprintf("sinks[%d].file.path", i))
		}
	}
	return v.ps.err()
}

// defaultFiles opens the files root a Manager uses when its config names
// none: FilesDirName beside the jobs directory, with the data directory
// (the jobs directory's parent) protected.
func defaultFiles(jobsDir string) (*confine.Root, error) {
	data := filepath.Dir(filepath.Clean(jobsDir))
	return confine.Open(filepath.Join(data, FilesDirName), data)
}
