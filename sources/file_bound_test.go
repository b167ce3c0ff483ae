package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// fileCases are the same records as JSON lines and as CSV, a blank line
// and a quoted cell over two lines among them.
var fileCases = []struct {
	name  string
	lines func(from, to int, tag string) string
}{
	{"in.jsonl", func(from, to int, tag string) string {
		var b strings.Builder
		for i := from; i <= to; i++ {
			fmt.Fprintf(&b, "{\"%s\":%d}\n", tag, i)
			if i == 2 {
				b.WriteString("\n")
			}
		}
		return b.String()
	}},
	{"in.csv", func(from, to int, tag string) string {
		var b strings.Builder
		if from == 1 {
			b.WriteString("tag,n,note\n")
		}
		for i := from; i <= to; i++ {
			note := "plain"
			if i == 2 {
				note = "\"two\nlines\""
			}
			fmt.Fprintf(&b, "%s,%d,%s\n", tag, i, note)
		}
		return b.String()
	}},
}

// readAfter opens the file source's shard after pos and reads it to its
// end: the records, or the error that ended the read.
func readAfter(t *testing.T, src *File, path, pos string) ([]Record, error) {
	t.Helper()
	r, err := src.Open(context.Background(), Shard{ID: path}, pos)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []Record
	buf := make([]Record, 2)
	for {
		n, err := r.Read(context.Background(), buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestFileResumesOnlyWhereItReadBefore: a file appended to after a
// position was read resumes after it; a file replaced, rewritten or
// truncated does not resume at the old line number (it would skip the new
// content's first lines, or read nothing): reading after the position is
// an error that says the file changed.
func TestFileResumesOnlyWhereItReadBefore(t *testing.T) {
	for _, c := range fileCases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, c.name, c.lines(1, 5, "a"))
			src, err := NewFile(FileConfig{Paths: []string{path}})
			if err != nil {
				t.Fatal(err)
			}
			recs, err := readAfter(t, src, path, "")
			if err != nil || len(recs) != 5 {
				t.Fatalf("read %d records, %v", len(recs), err)
			}
			pos := recs[2].Position // after the third record

			write := func(body string) {
				t.Helper()
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(c.lines(1, 5, "a") + c.lines(6, 7, "a"))
			got, err := readAfter(t, src, path, pos)
			if err != nil || len(got) != 4 {
				t.Fatalf("appended file after %s: %d records, %v; want records 4 to 7", pos, len(got), err)
			}
			for i, r := range got {
				if v := r.Value.(map[string]any); v["a"] != float64(i+4) && v["n"] != float64(i+4) {
					t.Fatalf("appended file after %s: record %d is %v, want %d", pos, i, v, i+4)
				}
			}

			for what, body := range map[string]string{
				"replaced":  c.lines(1, 5, "b"),
				"rewritten": strings.Replace(c.lines(1, 5, "a"), "1", "9", 1),
				"truncated": c.lines(1, 2, "a"),
			} {
				write(body)
				got, err := readAfter(t, src, path, pos)
				if err == nil || !strings.Contains(err.Error(), "changed since") {
					t.Errorf("%s file after %s: read %d records, err %v; want an error saying the file changed", what, pos, len(got), err)
				}
			}
		})
	}
}

// TestFileCheckPositions: before a restore, the source reports the files
// whose content up to their position changed, to be read again from their
// first line; unchanged and appended files, bare line numbers and files
// it does not read are left alone.
func TestFileCheckPositions(t *testing.T) {
	c := fileCases[0]
	same := writeFile(t, "same.jsonl", c.lines(1, 5, "a"))
	grown := writeFile(t, "grown.jsonl", c.lines(1, 5, "a"))
	swapped := writeFile(t, "swapped.jsonl", c.lines(1, 5, "a"))
	src, err := NewFile(FileConfig{Paths: []string{same, grown, swapped}})
	if err != nil {
		t.Fatal(err)
	}
	positions := map[string]string{"elsewhere.jsonl": "2:00000000"}
	for _, p := range []string{same, grown, swapped} {
		recs, err := readAfter(t, src, p, "")
		if err != nil {
			t.Fatal(err)
		}
		positions[p] = recs[3].Position
	}
	os.WriteFile(grown, []byte(c.lines(1, 5, "a")+c.lines(6, 6, "a")), 0o644)
	os.WriteFile(swapped, []byte(c.lines(1, 5, "b")), 0o644)
	got, err := src.CheckPositions(context.Background(), positions, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Resume) != 1 || got[0].Resume[swapped] != "" ||
		!strings.Contains(got[0].Problem, "file "+swapped+" changed since: its content up to line 5 is not what the job read") {
		t.Fatalf("problems %+v; want one dropping %s's position", got, swapped)
	}
	positions[swapped] = "5"
	if got, err := src.CheckPositions(context.Background(), positions, nil); err != nil || len(got) != 0 {
		t.Fatalf("a bare line number: %+v, %v; want it left alone", got, err)
	}
	_, err = readAfter(t, src, swapped, positions[grown])
	if !errors.Is(err, ErrFileChanged) {
		t.Fatalf("open after a changed position: %v, want ErrFileChanged", err)
	}
}
