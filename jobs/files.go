package jobs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/runnel-dev/runnel/internal/confine"
	"github.com/runnel-dev/runnel/sinks"
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
	for _, f := range s.files() {
		bad(f.Path, f.Field)
	}
	return v.ps.err()
}

// files lists the local files the job's source and sinks read and write,
// each with its field path (a one-file source written as a plain string:
// source.file).
func (s *Spec) files() []fileRef {
	out := s.sourceFiles()
	for i := range s.Sinks {
		sk := &s.Sinks[i]
		if k := lookupSink(sk.Kind()); k != nil && k.Files != nil {
			out = append(out, k.Files(sk, fmt.Sprintf("sinks[%d]", i))...)
		}
	}
	return out
}

// sourceFiles lists the local files the job's source reads.
func (s *Spec) sourceFiles() []fileRef {
	var out []fileRef
	if k := lookupSource(s.Source.Kind()); k != nil && k.Files != nil {
		for _, f := range k.Files(&s.Source) {
			if s.info != nil && strings.HasSuffix(f.Field, "]") {
				if _, ok := s.info.pos[f.Field]; !ok {
					f.Field = f.Field[:strings.LastIndexByte(f.Field, '[')]
				}
			}
			out = append(out, f)
		}
	}
	return out
}

// defaultFiles opens the files root a Manager uses when its config names
// none: FilesDirName beside the jobs directory, with the data directory
// (the jobs directory's parent) protected.
func defaultFiles(jobsDir string) (*confine.Root, error) {
	data := filepath.Dir(filepath.Clean(jobsDir))
	return confine.Open(filepath.Join(data, FilesDirName), data)
}

// fileError is a file sink that could not be opened, with its field.
type fileError struct {
	field string
	err   error
}

func (e *fileError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

// userFault reports whether err opening a job's file is the job file's
// fault (a path leading out, into the server's data, or onto a file that
// must not be overwritten or does not exist) rather than the server's.
func userFault(err error) bool {
	for _, e := range []error{confine.ErrEscapes, confine.ErrProtected, confine.ErrNotRegular, sinks.ErrFileExists, fs.ErrNotExist} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// asSpecError turns a build error that is the job file's fault into a
// *SpecError naming the field and its line; other errors pass unchanged.
func (s *Spec) asSpecError(err error) error {
	var fe *fileError
	if !errors.As(err, &fe) || !userFault(err) {
		return err
	}
	v := newValidator(s)
	v.add(fe.field, CodeInvalid, fe.err.Error(), "")
	return v.ps.err()
}

// checkSourceFiles opens each file of a file source beneath root and
// closes it again, so that a path that cannot be read is refused at
// submit, naming its field. The source resolves each path again when it
// opens it, so a later swap of a symlink is caught then.
func (s *Spec) checkSourceFiles(root *confine.Root) error {
	v := newValidator(s)
	for _, fr := range s.sourceFiles() {
		f, err := root.OpenFile(fr.Path, os.O_RDONLY, 0)
		if err == nil {
			f.Close()
			continue
		}
		if userFault(err) {
			v.add(fr.Field, CodeInvalid, err.Error(), "a server job's files are paths relative to its --files-root")
		} else {
			return fmt.Errorf("%s: %w", fr.Field, err)
		}
	}
	return v.ps.err()
}
