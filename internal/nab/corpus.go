package nab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Series is one corpus file: its rows and its labelled anomaly windows.
type Series struct {
	// Name is the file's path relative to the data directory, with forward
	// slashes, as the labels file names it ("realAdExchange/exchange-2_cpc_results.csv").
	Name       string
	Timestamps []time.Time
	Values     []float64
	// Windows are the anomaly windows as inclusive row-index ranges, in order.
	Windows []Window
}

// Window is an anomaly window as an inclusive range of row indices.
type Window struct{ Start, End int }

// timeLayouts are the timestamp forms ReadCSV accepts, tried in order.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
}

// ParseTime parses a NAB timestamp ("2014-02-14 14:30:00", optionally with
// fractional seconds), an RFC 3339 time, or epoch milliseconds. Times without
// a zone are UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("timestamp %q: want \"2006-01-02 15:04:05\", RFC 3339 or epoch milliseconds", s)
}

// ReadCSV reads a `timestamp,value` CSV (NAB format: a header row, then one
// row per point in time order). Extra columns are ignored. Errors name the
// file and line. name is used in errors only.
func ReadCSV(r io.Reader, name string) (ts []time.Time, values []float64, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		cols := strings.Split(text, ",")
		if line == 1 && len(cols) >= 2 && strings.EqualFold(strings.TrimSpace(cols[0]), "timestamp") {
			continue
		}
		if len(cols) < 2 {
			return nil, nil, fmt.Errorf("%s:%d: want timestamp,value, got %q", name, line, text)
		}
		t, err := ParseTime(cols[0])
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(cols[1]), 64)
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: value %q is not a number", name, line, strings.TrimSpace(cols[1]))
		}
		ts = append(ts, t)
		values = append(values, v)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return ts, values, nil
}

// ReadCSVFile is ReadCSV on a file.
func ReadCSVFile(path string) ([]time.Time, []float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("nab: open data file: %w", err)
	}
	defer f.Close()
	return ReadCSV(f, path)
}

// ErrNoLabels is returned by LoadCorpus when a data file has no entry in the
// labels file.
var ErrNoLabels = errors.New("nab: file has no labels")

// LoadCorpus reads every *.csv under dataDir and its windows from the labels
// file (a JSON object: file name → list of [start, end] timestamps). Series
// come back sorted by name.
func LoadCorpus(dataDir, labelsPath string) ([]Series, error) {
	raw, err := os.ReadFile(labelsPath)
	if err != nil {
		return nil, fmt.Errorf("nab: read labels: %w", err)
	}
	var labels map[string][][2]string
	if err := json.Unmarshal(raw, &labels); err != nil {
		return nil, fmt.Errorf("nab: parse labels %s: want {\"dir/file.csv\": [[start, end], ...]}: %w", labelsPath, err)
	}
	var names []string
	err = filepath.WalkDir(dataDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".csv") {
			rel, err := filepath.Rel(dataDir, p)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nab: list data directory: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("nab: no .csv files under %s", dataDir)
	}
	sort.Strings(names)
	out := make([]Series, 0, len(names))
	for _, name := range names {
		wins, ok := labels[name]
		if !ok {
			return nil, fmt.Errorf("%w: %s is not in %s", ErrNoLabels, name, labelsPath)
		}
		ts, vals, err := ReadCSVFile(filepath.Join(dataDir, filepath.FromSlash(name)))
		if err != nil {
			return nil, err
		}
		s := Series{Name: name, Timestamps: ts, Values: vals}
		for i, w := range wins {
			win, err := windowIndices(ts, w)
			if err != nil {
				return nil, fmt.Errorf("nab: %s window %d: %w", name, i, err)
			}
			s.Windows = append(s.Windows, win)
		}
		sort.Slice(s.Windows, func(i, j int) bool { return s.Windows[i].Start < s.Windows[j].Start })
		out = append(out, s)
	}
	return out, nil
}

// windowIndices maps a [start, end] timestamp pair to the rows it covers.
func windowIndices(ts []time.Time, w [2]string) (Window, error) {
	start, err := ParseTime(w[0])
	if err != nil {
		return Window{}, err
	}
	end, err := ParseTime(w[1])
	if err != nil {
		return Window{}, err
	}
	lo := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(start) })
	hi := sort.Search(len(ts), func(i int) bool { return ts[i].After(end) }) - 1
	if lo > hi {
		return Window{}, fmt.Errorf("[%s, %s] covers no rows", w[0], w[1])
	}
	return Window{Start: lo, End: hi}, nil
}
