package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxLineBytes bounds a line: a longer one is sent in parts of this size
// (a Kinesis record holds at most 1 MiB with its key and added fields).
const maxLineBytes = 900 << 10

// tracked is one file being read. The read position and buffers belong to
// the agent's loop; fields a checkpoint or an acknowledgement reads are
// guarded by Agent.mu.
type tracked struct {
	flow     *flowRunner
	dev, ino uint64
	f        *os.File
	readOff  int64     // next byte to read
	partial  []byte    // an unterminated line ending at readOff
	rotated  bool      // the glob no longer finds it: read to the end, then drop
	grewAt   time.Time // when a read last found it grown, or the rotation was noticed
	ml       []string  // multi-line record being gathered
	mlBytes  int
	mlEnd    int64
	mlAt     time.Time
	head     []byte // its first bytes as read (fp is their hash)

	// guarded by Agent.mu
	path       string
	fp         string
	fpLen      int
	header     []string
	headerText string
	gen        int // bumped at truncation: older acknowledgements no longer move the offset
	pending    []*pendingRec
	committed  int64
}

// beforeRead is called between the truncation check and the reads of a
// file; tests change files there.
var beforeRead = func(*tracked) {}

// pendingRec is a record sent and not yet acknowledged.
type pendingRec struct {
	t     *tracked
	gen   int
	end   int64 // the file offset just after the record's last line
	acked bool
}

// scan globs each flow's files: files already tracked (by inode) take
// their current path, new ones are opened (resuming from a checkpointed
// position that matches inode and fingerprint), and tracked files the glob
// no longer finds are marked rotated.
func (a *Agent) scan(first bool) error {
	for _, fr := range a.flows {
		paths, err := filepath.Glob(fr.cfg.Files)
		if err != nil {
			return fmt.Errorf("flow %s: glob %q: %w", fr.id, fr.cfg.Files, err)
		}
		seen := map[[2]uint64]bool{}
		for _, p := range paths {
			if a.isCheckpoint(p) {
				continue // never send our own checkpoint file
			}
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			dev, ino, ok := fileID(fi)
			if !ok {
				return fmt.Errorf("%s: no inode on this platform", p)
			}
			id := [2]uint64{dev, ino}
			seen[id] = true
			if t := fr.files[id]; t != nil {
				a.mu.Lock()
				t.path = p
				a.mu.Unlock()
				t.rotated = false
				continue
			}
			if err := a.open(fr, p, dev, ino, first, false); err != nil {
				a.log.Error("agent: open file", "path", p, "err", err)
				a.metrics.errors.Inc()
			}
		}
		for id, t := range fr.files {
			if !seen[id] && !t.rotated {
				t.rotated = true
				t.grewAt = time.Now() // rotate_wait counts from here: its writer may not have reopened yet
				a.metrics.rotations.Inc()
				a.log.Info("agent: file left the glob (rotated); reading it to its end", "path", t.path)
			}
		}
	}
	if first {
		a.adoptRotated()
	}
	return nil
}

func (a *Agent) isCheckpoint(p string) bool {
	abs, err := filepath.Abs(p)
	if err != nil {
		return false
	}
	cp, err := filepath.Abs(a.cfg.Checkpoint)
	return err == nil && (abs == cp || strings.HasPrefix(abs, cp+".tmp"))
}

// open starts tracking a file: from its checkpointed offset when the
// checkpoint knows its inode and its first bytes still match, else from
// the beginning (or the end, with start_at: end for files present at
// start). A rotated file (found by inode outside the glob) whose first
// bytes do not match is another file and is not tracked.
func (a *Agent) open(fr *flowRunner, path string, dev, ino uint64, first, rotated bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	t := &tracked{flow: fr, dev: dev, ino: ino, f: f, path: path, rotated: rotated, grewAt: time.Now()}
	head, err := readHead(f)
	if err != nil {
		f.Close()
		return err
	}
	t.setHead(head)
	key := posKey{fr.id, dev, ino}
	if pos, ok := a.restored[key]; ok {
		delete(a.restored, key)
		match := false
		if pos.FPLen <= len(head) && (pos.FPLen > 0 || !rotated) { // no first bytes: cannot be told apart
			sum := sha256.Sum256(head[:pos.FPLen])
			match = hex.EncodeToString(sum[:]) == pos.FP
		}
		fi, serr := f.Stat()
		if match && serr == nil && fi.Size() >= pos.Offset {
			t.readOff, t.committed = pos.Offset, pos.Offset
			t.headerText = pos.Header
			if pos.Header != "" {
				t.header, _ = parseHeader(pos.Header)
			}
		} else if rotated {
			// Found by inode outside the glob, but not the checkpointed
			// file: another file took the inode (a copy, say). Not ours.
			f.Close()
			a.log.Info("agent: a checkpointed file's inode now holds another file outside the glob; not read", "path", path, "was", pos.Path)
			return nil
		} else {
			a.log.Info("agent: inode reused or file rewritten since the checkpoint; reading it from the start", "path", path)
		}
	} else if first && fr.cfg.StartAt == "end" {
		if fi, err := f.Stat(); err == nil {
			t.readOff, t.committed = fi.Size(), fi.Size()
		}
	}
	if t.readOff > 0 && fr.cfg.Format == "csv" && len(fr.cfg.CSVColumns) == 0 && t.header == nil {
		a.readHeader(t)
	}
	a.mu.Lock()
	fr.files[[2]uint64{dev, ino}] = t
	a.mu.Unlock()
	a.metrics.files.Inc()
	return nil
}

// adoptRotated looks for checkpointed files the globs no longer find in
// their directory, by inode and fingerprint: a file rotated by rename
// while the agent was down is read to its end.
func (a *Agent) adoptRotated() {
	for key, pos := range a.restored {
		fr := a.flowByID[key.flow]
		if fr == nil {
			continue
		}
		dir := filepath.Dir(pos.Path)
		entries, _ := os.ReadDir(dir)
		found := false
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			if dev, ino, ok := fileID(fi); ok && dev == pos.Dev && ino == pos.Inode {
				if err := a.open(fr, p, dev, ino, false, true); err != nil {
					a.log.Error("agent: open rotated file", "path", p, "err", err)
					a.metrics.errors.Inc()
				}
				found = true
				break
			}
		}
		if !found {
			a.log.Info("agent: a checkpointed file is gone", "path", pos.Path, "offset", pos.Offset)
			delete(a.restored, key)
		}
	}
}

// readHeader reads a CSV file's first line as its header.
func (a *Agent) readHeader(t *tracked) {
	buf := make([]byte, 64<<10)
	n, _ := t.f.ReadAt(buf, 0)
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	a.mu.Lock()
	t.headerText = strings.TrimRight(line, "\r")
	t.header, _ = parseHeader(t.headerText)
	a.mu.Unlock()
}

// checkTruncated notices a file cut shorter than what was read, or whose
// first bytes changed (cut and written again): it is read from the start.
// It reports whether the file was cut.
func (a *Agent) checkTruncated(t *tracked) (bool, error) {
	fi, err := t.f.Stat()
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	fpLen, fp := t.fpLen, t.fp
	a.mu.Unlock()
	cut := fi.Size() < t.readOff
	if !cut && fpLen > 0 {
		now, n, err := fingerprint(t.f, fpLen)
		if err != nil {
			return false, err
		}
		cut = n < fpLen || now != fp
	}
	if !cut {
		return false, nil
	}
	a.log.Info("agent: file truncated; reading it from the start", "path", t.path, "size", fi.Size(), "read", t.readOff)
	a.metrics.truncations.Inc()
	head, err := readHead(t.f)
	if err != nil {
		return true, err
	}
	a.mu.Lock()
	t.gen++
	t.pending = nil
	t.committed = 0
	t.header, t.headerText = nil, ""
	t.setHead(head)
	a.mu.Unlock()
	t.readOff, t.partial, t.ml, t.mlBytes = 0, nil, nil, 0
	return true, nil
}

// readHead reads a file's first fingerprintLen bytes (fewer if it is
// shorter).
func readHead(f io.ReaderAt) ([]byte, error) {
	buf := make([]byte, fingerprintLen)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// setHead makes head the file's first bytes and their fingerprint (the
// caller holds Agent.mu once t is shared).
func (t *tracked) setHead(head []byte) {
	t.head = head
	sum := sha256.Sum256(head)
	t.fp, t.fpLen = hex.EncodeToString(sum[:]), len(head)
}

// readFile reads what the file holds beyond readOff and sends its
// complete lines. It reports whether it read anything.
func (a *Agent) readFile(t *tracked) (bool, error) {
	if _, err := a.checkTruncated(t); err != nil {
		return false, err
	}
	beforeRead(t)
	buf := make([]byte, 256<<10)
	grew := false
	for {
		n, err := t.f.ReadAt(buf, t.readOff)
		if n > 0 {
			// What was read belongs to the file the fingerprint describes
			// only if the file was not cut meanwhile (else it may be the
			// new content at the old offset): checked again after reading.
			if cut, cerr := a.checkTruncated(t); cerr != nil {
				return grew, cerr
			} else if cut {
				continue
			}
			if len(t.head) < fingerprintLen && t.readOff <= int64(len(t.head)) {
				// The fingerprint grows from bytes read, never from a
				// later look at the file, which may have been cut since.
				from := int64(len(t.head)) - t.readOff
				to := min(int64(n), fingerprintLen-t.readOff)
				if to > from {
					a.mu.Lock()
					t.setHead(append(append([]byte(nil), t.head...), buf[from:to]...))
					a.mu.Unlock()
				}
			}
			grew = true
			t.grewAt = time.Now()
			a.metrics.bytes.Add(float64(n))
			base := t.readOff - int64(len(t.partial))
			data := append(t.partial, buf[:n]...)
			t.readOff += int64(n)
			start := 0
			for {
				i := indexNL(data[start:])
				if i < 0 {
					break
				}
				end := start + i + 1
				text := data[start : start+i]
				for len(text) > maxLineBytes { // an over-long line whose head was read with this chunk
					a.log.Error("agent: line longer than the record limit; sending it in parts", "path", t.path)
					a.metrics.errors.Inc()
					if err := a.line(t, string(text[:maxLineBytes]), base+int64(end-1-len(text)+maxLineBytes)); err != nil {
						return grew, err
					}
					text = text[maxLineBytes:]
				}
				if err := a.line(t, strings.TrimSuffix(string(text), "\r"), base+int64(end)); err != nil {
					return grew, err
				}
				start = end
			}
			rest := data[start:]
			for len(rest) > maxLineBytes {
				a.log.Error("agent: line longer than the record limit; sending it in parts", "path", t.path, "offset", t.readOff-int64(len(rest)))
				a.metrics.errors.Inc()
				if err := a.line(t, string(rest[:maxLineBytes]), t.readOff-int64(len(rest))+maxLineBytes); err != nil {
					return grew, err
				}
				rest = rest[maxLineBytes:]
			}
			t.partial = append([]byte(nil), rest...)
		}
		if errors.Is(err, io.EOF) || n == 0 {
			break
		}
		if err != nil {
			return grew, err
		}
	}
	return grew, nil
}

// flushEnd sends the unterminated last line and a gathered multi-line
// record: the file's end ends them (--once, or a rotated file whose wait
// is over).
func (a *Agent) flushEnd(t *tracked) error {
	if len(t.partial) > 0 {
		p := string(t.partial)
		t.partial = nil
		if err := a.line(t, p, t.readOff); err != nil {
			return err
		}
	}
	return a.flushMultiline(t)
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// line handles one line ending at file offset end: the CSV header, a
// multi-line record's part, or a record.
func (a *Agent) line(t *tracked, text string, end int64) error {
	a.metrics.lines.Inc()
	cfg := t.flow.cfg
	if cfg.Format == "csv" && len(cfg.CSVColumns) == 0 && t.header == nil {
		h, err := parseHeader(text)
		if err != nil {
			a.log.Error("agent: CSV header unreadable", "path", t.path, "err", err)
			a.metrics.parseErrors.Inc()
		}
		a.mu.Lock()
		t.header, t.headerText = h, text
		a.mu.Unlock()
		return nil
	}
	if cfg.multiline != nil {
		if len(t.ml) > 0 && (cfg.multiline.MatchString(text) || t.mlBytes+len(text) > maxLineBytes) {
			if err := a.flushMultiline(t); err != nil {
				return err
			}
		}
		t.ml = append(t.ml, text)
		t.mlBytes += len(text) + 1
		t.mlEnd, t.mlAt = end, time.Now()
		return nil
	}
	if strings.TrimSpace(text) == "" {
		return nil
	}
	return a.emit(t, text, end)
}

func (a *Agent) flushMultiline(t *tracked) error {
	if len(t.ml) == 0 {
		return nil
	}
	text := strings.Join(t.ml, "\n")
	t.ml, t.mlBytes = nil, 0
	return a.emit(t, text, t.mlEnd)
}
