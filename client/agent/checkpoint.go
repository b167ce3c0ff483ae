package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/runnel-dev/runnel/internal/atomicfile"
)

// fingerprintLen is how many of a file's first bytes identify it beside
// its inode: a reused inode with other first bytes is a new file.
const fingerprintLen = 256

// position is one file's entry in the checkpoint file.
type position struct {
	Flow   string `json:"flow"` // the flow's stream and glob
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Inode  uint64 `json:"inode"`
	FPLen  int    `json:"fingerprint_len"`
	FP     string `json:"fingerprint"` // hex SHA-256 of the first FPLen bytes
	Offset int64  `json:"offset"`      // every record before it is acknowledged
	Header string `json:"csv_header,omitempty"`
}

type checkpointFile struct {
	Version int        `json:"version"`
	Files   []position `json:"files"`
}

func readCheckpoint(path string) ([]position, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var c checkpointFile
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("checkpoint %s is damaged (%v); move it away to start over, which sends every file again", path, err)
	}
	return c.Files, nil
}

// writeCheckpoint replaces the checkpoint file atomically (PATH.tmp-N is
// the temporary file, which the tailer skips).
func writeCheckpoint(path string, files []position) error {
	b, err := json.MarshalIndent(checkpointFile{Version: 1, Files: files}, "", " ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// fingerprint hashes the first n bytes of f (fewer if it is shorter) and
// returns the hash and how many bytes it covers.
func fingerprint(f io.ReaderAt, n int) (string, int, error) {
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", 0, err
	}
	sum := sha256.Sum256(buf[:got])
	return hex.EncodeToString(sum[:]), got, nil
}
