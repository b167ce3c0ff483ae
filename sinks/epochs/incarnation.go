package epochs

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/runnel-dev/runnel/state"
)

// An incarnation names one run of a job's sink from a fresh start (a new
// job, a job deleted and submitted again, a job replaced without a
// savepoint, a new data directory): a random id kept in the sink's state
// space, so that checkpoints and savepoints carry it and a job restored
// from one keeps it. A sink keys the record of its committed epochs in the
// target (a progress row, a progress group) by its incarnation, since the
// epochs of a fresh start count from 1 again: keyed by the job's name
// alone, the record of an earlier incarnation would make the sink skip
// them as committed. Within an incarnation, a replayed epoch is still
// recognised and skipped.
//
// A space restored from a checkpoint taken before sinks kept an
// incarnation holds none: its staged epochs are committed under the
// legacy record, keyed by the job's name (Incarnation ""), as they were
// staged for, and the sink then takes a new incarnation for the epochs
// after them.

// incarnationKey holds the incarnation in the space.
var incarnationKey = []byte{'i'}

// IsIncarnationKey says whether k, a key of a sink's space, is the one
// holding the incarnation: not staged output, so a space holding only it
// has nothing to commit.
func IsIncarnationKey(k []byte) bool { return string(k) == string(incarnationKey) }

// IncarnationLen is the length of an incarnation id.
const IncarnationLen = 16

func newIncarnation() string {
	var b [IncarnationLen / 2]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// loadIncarnation returns the incarnation stored in sp, "" when none is.
func loadIncarnation(sp *state.Space) (string, error) {
	v, ok, err := sp.Get(incarnationKey)
	if err != nil || !ok {
		return "", err
	}
	return string(v), nil
}

// Incarnation is the incarnation the epochs being committed belong to: ""
// while Restore commits the epochs of a space that holds none (staged
// before sinks kept one), and the space's own otherwise.
func (t *Txn) Incarnation() string {
	if t == nil {
		return ""
	}
	return t.inc
}
