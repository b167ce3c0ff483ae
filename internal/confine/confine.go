package confine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrEscapes: the path is absolute, climbs out with "..", or resolves
	// (through a symlink) to a place outside the root.
	ErrEscapes = errors.New("confine: path leads outside the files root")
	// ErrProtected: the path resolves into a protected directory.
	ErrProtected = errors.New("confine: path is inside the server's own data")
	// ErrNotRegular: the path names a directory, FIFO, device or socket.
	ErrNotRegular = errors.New("confine: not a regular file")
)

// CheckPath reports, without touching the disk, whether name can be
// opened beneath a root at all: it must be relative, non-empty and stay
// inside by its own "..". It returns an ErrEscapes error otherwise.
func CheckPath(name string) error {
	if !filepath.IsLocal(name) {
		return fmt.Errorf("%w: %q must be a path relative to the files root, without \"..\" leading out", ErrEscapes, name)
	}
	return nil
}

// Root is a directory beneath which files are opened. It is safe for
// concurrent use.
type Root struct {
	dir     string   // absolute, symlinks resolved
	protect []string // absolute, symlinks resolved
	dirFD   *os.File // the root, held open (Linux: O_PATH)
	osRoot  *os.Root // the portable resolver
}

// Open makes a Root of dir, creating it (0o750) when missing. Files whose
// real path lies inside one of protect are refused, except beneath the
// root itself when the root lies strictly inside that protected directory
// (a files root inside the data directory).
func Open(dir string, protect ...string) (*Root, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create files root: %w", err)
	}
	real, err := realDir(dir)
	if err != nil {
		return nil, fmt.Errorf("files root %s: %w", dir, err)
	}
	r := &Root{dir: real}
	for _, p := range protect {
		rp, err := realDir(p)
		if err != nil {
			return nil, fmt.Errorf("protected directory %s: %w", p, err)
		}
		if rp != real && within(real, rp) {
			continue // the root lies inside it: only the root is reachable anyway
		}
		r.protect = append(r.protect, rp)
	}
	if r.osRoot, err = os.OpenRoot(real); err != nil {
		return nil, fmt.Errorf("files root %s: %w", dir, err)
	}
	if r.dirFD, err = openDir(real); err != nil {
		r.osRoot.Close()
		return nil, fmt.Errorf("files root %s: %w", dir, err)
	}
	return r, nil
}

// realDir returns dir made absolute with its symlinks resolved.
func realDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// Dir returns the root's absolute, resolved path.
func (r *Root) Dir() string { return r.dir }

// Close releases the root's descriptors.
func (r *Root) Close() error {
	return errors.Join(r.dirFD.Close(), r.osRoot.Close())
}

// within reports whether path is dir or lies beneath it (both clean and
// absolute).
func within(path, dir string) bool {
	if path == dir {
		return true
	}
	if !strings.HasSuffix(dir, string(filepath.Separator)) {
		dir += string(filepath.Separator)
	}
	return strings.HasPrefix(path, dir)
}

func (r *Root) protected(real string) bool {
	for _, p := range r.protect {
		if within(real, p) {
			return true
		}
	}
	return false
}

// OpenFile opens name, relative to the root, like os.OpenFile. A path that
// leads out gets an ErrEscapes error, one into a protected directory an
// ErrProtected error, and anything but a regular file ErrNotRegular; all
// wrapped in an *fs.PathError naming name. Where the flags create the file
// (O_CREATE), its directory is checked before anything is created.
func (r *Root) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if err := CheckPath(name); err != nil {
		return nil, err
	}
	f, err := r.open(name, flag, perm)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Path = name
			return nil, pe
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return f, nil
}

// openPortable opens name through os.Root, checking protected
// directories by resolving the path separately.
func (r *Root) openPortable(name string, flag int, perm os.FileMode) (*os.File, error) {
	if flag&os.O_CREATE != 0 && len(r.protect) > 0 {
		parent, err := filepath.EvalSymlinks(filepath.Join(r.dir, filepath.Dir(name)))
		if err == nil && r.protected(parent) {
			return nil, ErrProtected
		}
	}
	f, err := r.osRoot.OpenFile(name, flag|nonblock, perm)
	if err != nil {
		if strings.Contains(err.Error(), "path escapes from parent") {
			return nil, ErrEscapes
		}
		return nil, err
	}
	if err := r.checkOpened(f, func() (string, error) {
		return filepath.EvalSymlinks(filepath.Join(r.dir, name))
	}); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkOpened refuses f unless it is a regular file outside every
// protected directory; realPath says where f lies.
func (r *Root) checkOpened(f *os.File, realPath func() (string, error)) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return ErrNotRegular
	}
	if len(r.protect) > 0 {
		p, err := realPath()
		if err != nil {
			return fmt.Errorf("resolve the opened file: %w", err)
		}
		if r.protected(p) {
			return ErrProtected
		}
	}
	return clearNonblock(f)
}
