package consumergroups

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Sentinel errors; the HTTP layer maps each to a stable code.
var (
	// ErrLeaseLost refuses a checkpoint or release from a worker that does
	// not hold the lease at the epoch it names.
	ErrLeaseLost   = errors.New("consumergroups: lease lost")
	ErrNotFound    = errors.New("consumergroups: not found")
	ErrExists      = errors.New("consumergroups: group already exists")
	ErrInvalid     = errors.New("consumergroups: invalid argument")
	ErrUnavailable = errors.New("consumergroups: store unavailable")
	// ErrLimit refuses a group or worker beyond the server's limits.
	ErrLimit = errors.New("consumergroups: limit exceeded")
)

// Error carries the field at fault and one of the sentinels.
type Error struct {
	Field string
	Err   error
	Msg   string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) error {
	return &Error{Field: field, Err: ErrInvalid, Msg: fmt.Sprintf(format, args...)}
}

// ShardEnd is the checkpoint of a shard read to its end.
const ShardEnd = "SHARD_END"

// Checkpoint is how far a group has handled a shard: every user record up
// to and including SequenceNumber's SubSequenceNumber-th (0 for a record
// that is not aggregated), or the whole shard when SequenceNumber is
// ShardEnd. The zero value means nothing yet.
type Checkpoint struct {
	SequenceNumber    string `json:"sequence_number,omitempty"`
	SubSequenceNumber uint64 `json:"sub_sequence_number,omitempty"`
}

// Validate checks the sequence number is ShardEnd or a decimal number.
func (c Checkpoint) Validate() error {
	s := c.SequenceNumber
	if s == ShardEnd {
		return nil
	}
	if s == "" || len(s) > 128 || strings.Trim(s, "0123456789") != "" {
		return invalid("sequence_number", "sequence_number %q is not a decimal sequence number or %s", s, ShardEnd)
	}
	return nil
}

// Shard is a shard as the lease table needs it.
type Shard struct {
	ID             string
	Parent         string
	AdjacentParent string
	HashKeyStart   string
	HashKeyEnd     string
}

// Lease is one shard's entry in a group.
type Lease struct {
	Shard          string `json:"shard"`
	Parent         string `json:"parent,omitempty"`
	AdjacentParent string `json:"adjacent_parent,omitempty"`
	HashKeyStart   string `json:"hash_key_start"`
	HashKeyEnd     string `json:"hash_key_end"`
	// Owner is the worker holding the lease until Expires ("" for none).
	Owner   string    `json:"owner,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	// Epoch counts the takes of this lease; a checkpoint must name it.
	Epoch      uint64     `json:"epoch"`
	Checkpoint Checkpoint `json:"checkpoint"`
	// ReleaseRequested asks the owner to checkpoint and release the lease
	// so that another worker can take it (balancing).
	ReleaseRequested bool `json:"release_requested,omitempty"`
}

// Finished reports whether the shard was read to its end.
func (l *Lease) Finished() bool { return l.Checkpoint.SequenceNumber == ShardEnd }

// held reports whether the lease has a live owner at now.
func (l *Lease) held(now time.Time) bool { return l.Owner != "" && now.Before(l.Expires) }

// State is one group's leases and live workers: what both lease stores
// keep, and what the protocol functions change.
type State struct {
	Leases map[string]*Lease // by shard ID
	// Workers maps each registered worker to when its registration ends.
	Workers map[string]time.Time
}

// NewState returns an empty State.
func NewState() *State {
	return &State{Leases: map[string]*Lease{}, Workers: map[string]time.Time{}}
}

// Changes says which leases an operation changed, so a store can write
// only those.
type Changes struct {
	Updated []string // shards whose lease was added or changed
	Deleted []string // shards no longer listed
}

func (c *Changes) note(shard string) {
	if !slices.Contains(c.Updated, shard) {
		c.Updated = append(c.Updated, shard)
	}
}

// Any reports whether anything changed.
func (c *Changes) Any() bool { return len(c.Updated)+len(c.Deleted) > 0 }

// Sync registers worker (or renews it) until now+dur, brings the leases in
// line with shards (the stream's shards now: new ones added, ones no longer
// listed dropped), renews the worker's leases, takes free eligible leases up
// to its fair share and, when it is still short, asks the busiest worker to
// hand one off. A lease of worker's that expired is taken anew, at a new
// epoch. It returns the leases worker holds afterwards, by shard ID.
// Renewals alone (Expires) are not reported in Changes.Updated.
func Sync(st *State, shards []Shard, worker string, now time.Time, dur time.Duration) ([]Lease, Changes) {
	ch := st.Refresh(shards)
	until := now.Add(dur)
	st.Workers[worker] = until
	for id, exp := range st.Workers {
		if !now.Before(exp) {
			delete(st.Workers, id)
		}
	}
	ids := sortedIDs(st.Leases)
	held := map[string]int{}
	var eligible []*Lease
	for _, id := range ids {
		l := st.Leases[id]
		if l.Owner == worker {
			if !l.held(now) {
				// Expired, and no one took it meanwhile: the worker takes
				// it anew, at a new epoch, as the KCL retakes (never renews)
				// an expired lease with a new lease counter. A checkpoint
				// the worker sent before the expiry and the store gets
				// only now is refused, so it cannot land after one of the
				// reader that goes on from this Sync.
				l.Epoch++
				l.ReleaseRequested = false
				ch.note(l.Shard)
			}
			l.Expires = until
		}
		if !st.eligible(l) {
			continue
		}
		eligible = append(eligible, l)
		if l.held(now) {
			held[l.Owner]++
			if _, ok := st.Workers[l.Owner]; !ok {
				st.Workers[l.Owner] = l.Expires // an owner known only by its lease (after a restart)
			}
		}
	}
	live := len(st.Workers)
	most := (len(eligible) + live - 1) / live
	for _, l := range eligible {
		if held[worker] >= most {
			break
		}
		if !l.held(now) {
			l.Owner, l.Expires, l.ReleaseRequested = worker, until, false
			l.Epoch++
			held[worker]++
			ch.note(l.Shard)
		}
	}
	if least := len(eligible) / live; held[worker] < least {
		if l := st.handOff(eligible, held, worker, now); l != nil {
			l.ReleaseRequested = true
			ch.note(l.Shard)
		}
	}
	var mine []Lease
	for _, id := range ids {
		if l := st.Leases[id]; l.Owner == worker && !l.Finished() {
			mine = append(mine, *l)
		}
	}
	return mine, ch
}

// Refresh brings the leases in line with shards, the stream's shards now:
// a lease for each new one, none for those no longer listed.
func (st *State) Refresh(shards []Shard) Changes {
	var ch Changes
	listed := make(map[string]bool, len(shards))
	for _, s := range shards {
		listed[s.ID] = true
		if _, ok := st.Leases[s.ID]; !ok {
			st.Leases[s.ID] = &Lease{Shard: s.ID, Parent: s.Parent, AdjacentParent: s.AdjacentParent,
				HashKeyStart: s.HashKeyStart, HashKeyEnd: s.HashKeyEnd}
			ch.note(s.ID)
		}
	}
	for id := range st.Leases {
		if !listed[id] {
			delete(st.Leases, id)
			ch.Deleted = append(ch.Deleted, id)
		}
	}
	slices.Sort(ch.Deleted)
	return ch
}

// handOff picks the lease the busiest worker should give up for worker, or
// nil when none should (a hand-off is already pending, or no one holds two
// more than worker).
func (st *State) handOff(eligible []*Lease, held map[string]int, worker string, now time.Time) *Lease {
	busiest := ""
	for _, l := range eligible {
		if l.ReleaseRequested && l.held(now) {
			return nil
		}
		if l.held(now) && (busiest == "" || held[l.Owner] > held[busiest] || held[l.Owner] == held[busiest] && l.Owner < busiest) {
			busiest = l.Owner
		}
	}
	if busiest == "" || held[busiest] < held[worker]+2 {
		return nil
	}
	for i := len(eligible) - 1; i >= 0; i-- {
		if l := eligible[i]; l.Owner == busiest && l.held(now) {
			return l
		}
	}
	return nil
}

// eligible reports whether l may be leased: not finished, and each parent
// finished or gone from the table.
func (st *State) eligible(l *Lease) bool {
	if l.Finished() {
		return false
	}
	for _, p := range []string{l.Parent, l.AdjacentParent} {
		if pl, ok := st.Leases[p]; p != "" && ok && !pl.Finished() {
			return false
		}
	}
	return true
}

func sortedIDs(m map[string]*Lease) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	// Shard IDs carry their index zero-padded, so parents sort before
	// their children.
	slices.Sort(ids)
	return ids
}

// owned returns shard's lease when worker holds it at epoch, else an
// ErrLeaseLost or ErrNotFound error.
func (st *State) owned(shard, worker string, epoch uint64) (*Lease, error) {
	l, ok := st.Leases[shard]
	if !ok {
		return nil, &Error{Field: "shard", Err: ErrNotFound, Msg: fmt.Sprintf("the group has no lease for shard %q", shard)}
	}
	if l.Owner != worker || l.Epoch != epoch {
		owner := l.Owner
		if owner == "" {
			owner = "no one"
		}
		return nil, &Error{Field: "epoch", Err: ErrLeaseLost, Msg: fmt.Sprintf(
			"shard %s: worker %q at epoch %d does not hold the lease (it is held by %s at epoch %d): stop reading the shard", shard, worker, epoch, owner, l.Epoch)}
	}
	return l, nil
}

// Checkpoint records cp for shard when worker holds its lease at epoch; a
// checkpoint at ShardEnd also ends the lease (the shard is finished and its
// children become eligible). It is refused with ErrLeaseLost otherwise.
func (st *State) Checkpoint(shard, worker string, epoch uint64, cp Checkpoint) error {
	if err := cp.Validate(); err != nil {
		return err
	}
	l, err := st.owned(shard, worker, epoch)
	if err != nil {
		return err
	}
	l.Checkpoint = cp
	if l.Finished() {
		l.Owner, l.Expires, l.ReleaseRequested = "", time.Time{}, false
	}
	return nil
}

// Release gives up shard's lease held by worker at epoch, after recording
// cp when it is set, so that another worker can take it at once.
func (st *State) Release(shard, worker string, epoch uint64, cp *Checkpoint) error {
	if cp != nil {
		if err := st.Checkpoint(shard, worker, epoch, *cp); err != nil {
			return err
		}
		if cp.SequenceNumber == ShardEnd {
			return nil
		}
	}
	l, err := st.owned(shard, worker, epoch)
	if err != nil {
		return err
	}
	l.Owner, l.Expires, l.ReleaseRequested = "", time.Time{}, false
	return nil
}

// Leave unregisters worker and frees every lease it holds, returning the
// shards freed.
func (st *State) Leave(worker string) []string {
	delete(st.Workers, worker)
	var freed []string
	for _, id := range sortedIDs(st.Leases) {
		if l := st.Leases[id]; l.Owner == worker {
			l.Owner, l.Expires, l.ReleaseRequested = "", time.Time{}, false
			freed = append(freed, id)
		}
	}
	return freed
}

// ValidName checks a group or worker name: 1 to 128 of [A-Za-z0-9_.-].
func ValidName(field, s string) error {
	if s == "" || len(s) > 128 || strings.TrimLeft(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != "" || s[0] == '.' {
		return invalid(field, "%s %q must be 1 to 128 of A-Z a-z 0-9 _ . - and not start with '.'", field, s)
	}
	return nil
}
