package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.json")
	for _, data := range []string{"first", "second, longer"} {
		if err := Write(path, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != data {
			t.Fatalf("read back %q, %v; want %q", b, err, data)
		}
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	k1, err := Key(path, 32)
	if err != nil || len(k1) != 32 {
		t.Fatalf("new key: %d bytes, %v", len(k1), err)
	}
	k2, err := Key(path, 32)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("the key changed across loads (%v)", err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	os.WriteFile(path, []byte("short"), 0o600)
	var ws *WrongSizeError
	if _, err := Key(path, 32); !errors.As(err, &ws) || ws.Size != 5 {
		t.Fatalf("short key file: %v, want a WrongSizeError of 5 bytes", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "short" {
		t.Error("a key file of the wrong size was replaced")
	}
}
