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
