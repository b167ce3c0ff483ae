package confine

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// nonblock keeps opening a FIFO from blocking; it is cleared again once
// the file is known to be regular.
const nonblock = unix.O_NONBLOCK

// noOpenat2 is set once openat2 turned out to be unavailable, and by tests
// of the portable path.
var noOpenat2 atomic.Bool

func openDir(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

func (r *Root) open(name string, flag int, perm os.FileMode) (*os.File, error) {
	if noOpenat2.Load() {
		return r.openPortable(name, flag, perm)
	}
	const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS
	if flag&os.O_CREATE != 0 && len(r.protect) > 0 {
		// Check the directory before a file is created in it.
		pfd, err := unix.Openat2(int(r.dirFD.Fd()), filepath.Dir(name),
			&unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolve})
		if err != nil {
			return r.openat2Failed(name, flag, perm, err)
		}
		p, err := fdPath(pfd)
		unix.Close(pfd)
		if err != nil {
			return nil, err
		}
		if r.protected(p) {
			return nil, ErrProtected
		}
	}
	fd, err := unix.Openat2(int(r.dirFD.Fd()), name, &unix.OpenHow{
		Flags: uint64(flag) | unix.O_CLOEXEC | unix.O_NONBLOCK, Mode: uint64(perm.Perm()), Resolve: resolve})
	if err != nil {
		return r.openat2Failed(name, flag, perm, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(r.dir, name))
	if err := r.checkOpened(f, func() (string, error) { return fdPath(fd) }); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openat2Failed maps openat2's errors, falling back to the portable
// resolver when the system call is missing or filtered.
func (r *Root) openat2Failed(name string, flag int, perm os.FileMode, err error) (*os.File, error) {
	switch {
	case errors.Is(err, unix.ENOSYS):
		noOpenat2.Store(true)
		return r.openPortable(name, flag, perm)
	case errors.Is(err, unix.EXDEV):
		return nil, ErrEscapes
	}
	return nil, err
}

// fdPath returns the path the kernel resolved fd to.
func fdPath(fd int) (string, error) {
	return os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
}

func clearNonblock(f *os.File) error {
	return unix.SetNonblock(int(f.Fd()), false)
}
