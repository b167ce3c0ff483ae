//go:build unix

package confine

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// layout makes a data directory with a files root inside it, a secret
// outside, and symlinks in the root pointing in and out.
func layout(t *testing.T) (top, data, files string) {
	t.Helper()
	top = t.TempDir()
	data = filepath.Join(top, "data")
	files = filepath.Join(data, "files")
	for _, d := range []string{files, filepath.Join(files, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(top, "secret"), "secret")
	write(filepath.Join(data, "streams.json"), "{}")
	write(filepath.Join(files, "in.jsonl"), "{}\n")
	for link, to := range map[string]string{
		"out-abs":   filepath.Join(top, "secret"),
		"out-rel":   "../../secret",
		"up":        "..",
		"in-link":   "in.jsonl",
		"sub/local": "../in.jsonl",
		"proc":      "/proc/self/root/etc/passwd",
	} {
		if err := os.Symlink(to, filepath.Join(files, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(files, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return top, data, files
}

// TestOpenBeneath: every way out of the root is refused with ErrEscapes,
// by openat2 and by the portable resolver alike; paths that stay inside
// open.
func TestOpenBeneath(t *testing.T) {
	eachResolver(t, func(t *testing.T) {
		top, data, files := layout(t)
		r, err := Open(files, data)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for _, tc := range []struct {
			name string
			want error
		}{
			{"in.jsonl", nil},
			{"sub/../in.jsonl", nil},
			{"in-link", nil},
			{"sub/local", nil},
			{filepath.Join(top, "secret"), ErrEscapes},
			{"/etc/passwd", ErrEscapes},
			{"../streams.json", ErrEscapes},
			{"sub/../../streams.json", ErrEscapes},
			{"out-abs", ErrEscapes},
			{"out-rel", ErrEscapes},
			{"up/streams.json", ErrEscapes},
			{"proc", ErrEscapes},
			{"", ErrEscapes},
			{"sub", ErrNotRegular},
			{"fifo", ErrNotRegular},
		} {
			f, err := r.OpenFile(tc.name, os.O_RDONLY, 0)
			if f != nil {
				f.Close()
			}
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("open %q: %v, want %v", tc.name, err, tc.want)
			}
		}
		// Creating outside is refused too and leaves nothing behind.
		for _, name := range []string{"out-rel/x", "up/new.jsonl", "../new.jsonl"} {
			if f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
				f.Close()
				t.Errorf("create %q succeeded", name)
			}
		}
		if _, err := os.Stat(filepath.Join(data, "new.jsonl")); err == nil {
			t.Errorf("a file was created in the data directory")
		}
	})
}

// TestProtectedInsideRoot: when the files root contains the data
// directory, the data directory's files stay out of reach, for reading and
// for creating, also through a symlink inside the root.
func TestProtectedInsideRoot(t *testing.T) {
	eachResolver(t, func(t *testing.T) {
		top, data, _ := layout(t)
		if err := os.Symlink("data", filepath.Join(top, "d")); err != nil {
			t.Fatal(err)
		}
		r, err := Open(top, data)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for _, name := range []string{"data/streams.json", "d/streams.json", "data/files/in.jsonl"} {
			f, err := r.OpenFile(name, os.O_RDONLY, 0)
			if f != nil {
				f.Close()
			}
			if !errors.Is(err, ErrProtected) {
				t.Errorf("open %q: %v, want ErrProtected", name, err)
			}
		}
		f, err := r.OpenFile("d/new.json", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if f != nil {
			f.Close()
		}
		if !errors.Is(err, ErrProtected) {
			t.Errorf("create in the data directory: %v, want ErrProtected", err)
		}
		if _, err := os.Stat(filepath.Join(data, "new.json")); err == nil {
			t.Errorf("a file was created in the data directory")
		}
		if f, err := r.OpenFile("secret", os.O_RDONLY, 0); err != nil {
			t.Errorf("a file of the root beside the data directory: %v", err)
		} else {
			f.Close()
		}
	})
}

func TestCheckPath(t *testing.T) {
	for name, ok := range map[string]bool{
		"out.jsonl": true, "a/b.csv": true, "a/../b.csv": true,
		"/etc/passwd": false, "../x": false, "a/../../x": false, "": false,
	} {
		if err := CheckPath(name); (err == nil) != ok {
			t.Errorf("CheckPath(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
