package state

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// OperatorBytes is the size of each operator's state: the bytes of the
// keys and values of all its tasks' spaces (Namespace), by operator id.
// Operators without state are absent. It reads every key once, so its
// cost grows with the state; the jobs manager calls it once per metrics
// sample and per status read.
func (db *DB) OperatorBytes() (map[string]int64, error) {
	if err := db.use(); err != nil {
		return nil, err
	}
	// The DB stays open for the whole scan: Close waits for it.
	defer db.done()
	it, err := db.pdb.NewIter(&pebble.IterOptions{})
	if err != nil {
		return nil, fmt.Errorf("state: operator sizes: %w", err)
	}
	out := map[string]int64{}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		i := bytes.IndexByte(k, 0)
		if i <= 0 {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("state: operator sizes: %w", err)
		}
		out[string(k[:i])] += int64(len(k) + len(v))
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("state: operator sizes: %w", err)
	}
	return out, nil
}

// Operators lists the ids of the operators that have state, sorted. It
// seeks from one operator's keys to the next's, so its cost grows with
// the number of operators, not with the state.
func (db *DB) Operators() ([]string, error) {
	if err := db.use(); err != nil {
		return nil, err
	}
	defer db.done()
	it, err := db.pdb.NewIter(&pebble.IterOptions{})
	if err != nil {
		return nil, fmt.Errorf("state: operators: %w", err)
	}
	var out []string
	for valid := it.First(); valid; {
		k := it.Key()
		i := bytes.IndexByte(k, 0)
		if i <= 0 {
			valid = it.Next()
			continue
		}
		out = append(out, string(k[:i]))
		// Every key of the operator starts with its id and a 0 byte: the
		// next operator's keys start at or after id and 1.
		valid = it.SeekGE(append(k[:i:i], 1))
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("state: operators: %w", err)
	}
	return out, nil
}
