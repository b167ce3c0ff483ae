// Package confine opens the files of server jobs beneath one directory, the
// files root, so that a job file cannot name a path elsewhere on the
// machine: not by an absolute path, not by "..", not by a symlink inside
// the root that points out (also one swapped in after the job was
// submitted), and never inside a protected directory such as the server's
// own data directory, even when the root contains it.
//
// On Linux a path is resolved by the kernel with openat2(2) and
// RESOLVE_BENEATH, relative to a descriptor of the root held open since
// the Root was made. Where openat2 is missing (other systems, kernels
// before 5.6, seccomp filters) it falls back to os.Root, which walks the
// path one component at a time and refuses any that leads out; the
// protected-directory check then resolves the path separately, which a
// concurrent swap of a symlink could race.
//
// Only regular files are opened: a FIFO or device inside the root is
// refused rather than blocked on.
package confine
