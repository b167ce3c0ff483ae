package consumergroups

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/internal/atomicfile"
	"github.com/runnel-dev/runnel/streams"
)

// Lease durations a group may have.
const (
	DefaultLeaseDuration = 10 * time.Second
	MinLeaseDuration     = 200 * time.Millisecond
	MaxLeaseDuration     = time.Hour
	// MaxGroupsPerStream and MaxWorkersPerGroup bound what a reader of a
	// stream can make the server keep.
	MaxGroupsPerStream = 100
	MaxWorkersPerGroup = 1000
)

// Config is what a group is made with.
type Config struct {
	Stream string `json:"stream"`
	Name   string `json:"name"`
	// LeaseDuration is how long a worker keeps its leases without a Sync.
	LeaseDuration time.Duration `json:"lease_duration"`
	// Start is where a shard without a checkpoint is read from:
	// "trim_horizon" (the default) or "latest".
	Start string `json:"start"`
}

// EnsureDefaults fills what is unset.
func (c *Config) EnsureDefaults() {
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.Start == "" {
		c.Start = "trim_horizon"
	}
}

// Validate checks the names, the lease duration and the start.
func (c *Config) Validate() error {
	if err := ValidName("name", c.Name); err != nil {
		return err
	}
	if c.LeaseDuration < MinLeaseDuration || c.LeaseDuration > MaxLeaseDuration {
		return invalid("lease_duration_ms", "lease_duration_ms %d must lie in [%d, %d]", c.LeaseDuration.Milliseconds(), MinLeaseDuration.Milliseconds(), MaxLeaseDuration.Milliseconds())
	}
	if c.Start != "trim_horizon" && c.Start != "latest" {
		return invalid("start", "start %q must be trim_horizon or latest", c.Start)
	}
	return nil
}

// Group describes a group: its config, leases and live workers.
type Group struct {
	Config
	Created time.Time
	Leases  []Lease // by shard ID
	Workers []string
	// StaleRefused counts checkpoints and releases refused since the server
	// started because their worker no longer held the lease.
	StaleRefused int64
}

// groupFile is a group's file: its config and leases (owners included, so
// that a restart keeps them; their expiry restarts at load).
type groupFile struct {
	Config  Config    `json:"config"`
	Created time.Time `json:"created"`
	// StreamCreated is the creation time of the stream the group was made
	// on (current): its checkpoints are positions in that stream only.
	StreamCreated time.Time `json:"stream_created,omitzero"`
	Leases        []Lease   `json:"leases"`
}

type group struct {
	cfg           Config
	created       time.Time
	streamCreated time.Time
	st            *State
	refused       int64
}

// Manager keeps the consumer groups of a server's streams: one file per
// group under Dir/STREAM/GROUP.json, replaced atomically and fsynced on
// every change of an owner, an epoch or a checkpoint (renewals stay in
// memory: after a restart every lease's expiry starts again).
type Manager struct {
	dir   string
	store *streams.Store
	log   *slog.Logger
	now   func() time.Time

	mu struct {
		sync.Mutex
		groups map[[2]string]*group // by stream, name
	}
}

// Options configure Open.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
}

// Open loads the groups under dir (created if missing) for the streams of
// store. A group file that cannot be read is an error naming it: starting
// without it would silently restart its readers from the trim horizon.
func Open(dir string, store *streams.Store, o Options) (*Manager, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Manager{dir: dir, store: store, log: o.Logger, now: o.Now}
	m.mu.groups = map[[2]string]*group{}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("consumer groups: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("consumer groups: %w", err)
	}
	now := m.now()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("consumer groups: read %s: %w", f, err)
		}
		var gf groupFile
		if err := json.Unmarshal(b, &gf); err != nil {
			return nil, fmt.Errorf("consumer groups: %s is damaged (%v): restore it from a backup or delete it (its group's checkpoints are then lost)", f, err)
		}
		g := &group{cfg: gf.Config, created: gf.Created, streamCreated: gf.StreamCreated, st: NewState()}
		for i := range gf.Leases {
			l := gf.Leases[i]
			if l.Owner != "" {
				l.Expires = now.Add(g.cfg.LeaseDuration)
			}
			g.st.Leases[l.Shard] = &l
		}
		m.mu.groups[[2]string{gf.Config.Stream, gf.Config.Name}] = g
	}
	return m, nil
}

func notFound(stream, name string) error {
	return &Error{Field: "group", Err: ErrNotFound, Msg: fmt.Sprintf("stream %q has no consumer group %q", stream, name)}
}

// get returns a group of the stream as it is now (current).
func (m *Manager) get(stream, name string) (*group, error) {
	m.current(stream)
	g, ok := m.mu.groups[[2]string{stream, name}]
	if !ok {
		return nil, notFound(stream, name)
	}
	return g, nil
}

// current removes the groups of stream that were made on an earlier
// stream of its name, one deleted before the stream was created again:
// their checkpoints are positions in the deleted stream, which the new
// one's sequence numbers would repeat, so its readers would skip records.
// Consumer groups go with their stream, as Kafka's committed offsets go
// with a deleted topic. A group saved before groups recorded their
// stream's creation takes the stream as it is now; the groups of a stream
// that does not exist are left as they are. The caller holds mu.
func (m *Manager) current(stream string) {
	created, err := m.store.StreamCreated(stream)
	if err != nil {
		return
	}
	for k, g := range m.mu.groups {
		switch {
		case k[0] != stream || g.streamCreated.Equal(created):
		case g.streamCreated.IsZero():
			g.streamCreated = created
			_ = m.save(g) // else saved with the group's next change
		default:
			if err := os.Remove(filepath.Join(m.dir, stream, k[1]+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
				m.log.Error("remove the consumer group of a deleted stream", "stream", stream, "group", k[1], "err", err)
				continue
			}
			delete(m.mu.groups, k)
			m.log.Info("consumer group removed with its stream, which was deleted and created again",
				"stream", stream, "group", k[1], "group_stream_created", g.streamCreated, "stream_created", created)
		}
	}
}

// save writes g's file; the caller holds mu.
func (m *Manager) save(g *group) error {
	gf := groupFile{Config: g.cfg, Created: g.created, StreamCreated: g.streamCreated}
	for _, id := range sortedIDs(g.st.Leases) {
		l := *g.st.Leases[id]
		l.Expires = time.Time{}
		gf.Leases = append(gf.Leases, l)
	}
	b, err := json.MarshalIndent(gf, "", " ")
	if err != nil {
		return err
	}
	dir := filepath.Join(m.dir, g.cfg.Stream)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := atomicfile.Write(filepath.Join(dir, g.cfg.Name+".json"), b, 0o600); err != nil {
		m.log.Error("consumer group not saved", "stream", g.cfg.Stream, "group", g.cfg.Name, "err", err)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Create makes a group on a stream.
func (m *Manager) Create(c Config) (Group, error) {
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		return Group{}, err
	}
	info, err := m.store.DescribeStream(c.Stream)
	if err != nil {
		return Group{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.current(c.Stream)
	k := [2]string{c.Stream, c.Name}
	if _, ok := m.mu.groups[k]; ok {
		return Group{}, &Error{Field: "name", Err: ErrExists, Msg: fmt.Sprintf("stream %q already has a consumer group %q", c.Stream, c.Name)}
	}
	n := 0
	for gk := range m.mu.groups {
		if gk[0] == c.Stream {
			n++
		}
	}
	if n >= MaxGroupsPerStream {
		return Group{}, &Error{Field: "name", Err: ErrLimit, Msg: fmt.Sprintf("stream %q has %d consumer groups, the most it may have: delete one first", c.Stream, n)}
	}
	g := &group{cfg: c, created: m.now().UTC(), streamCreated: info.Created, st: NewState()}
	g.st.Refresh(shardsOf(info))
	if err := m.save(g); err != nil {
		return Group{}, err
	}
	m.mu.groups[k] = g
	return g.describe(), nil
}

func (g *group) describe() Group {
	out := Group{Config: g.cfg, Created: g.created, StaleRefused: g.refused, Leases: []Lease{}, Workers: []string{}}
	for _, id := range sortedIDs(g.st.Leases) {
		out.Leases = append(out.Leases, *g.st.Leases[id])
	}
	for w := range g.st.Workers {
		out.Workers = append(out.Workers, w)
	}
	slices.Sort(out.Workers)
	return out
}

// List returns the groups of a stream by name.
func (m *Manager) List(stream string) []Group {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.current(stream)
	var out []Group
	for k, g := range m.mu.groups {
		if k[0] == stream {
			out = append(out, g.describe())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Describe returns one group.
func (m *Manager) Describe(stream, name string) (Group, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.get(stream, name)
	if err != nil {
		return Group{}, err
	}
	return g.describe(), nil
}

// Delete removes a group and its checkpoints.
func (m *Manager) Delete(stream, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.get(stream, name); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(m.dir, stream, name+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	delete(m.mu.groups, [2]string{stream, name})
	return nil
}

// SyncResult is a worker's view after a Sync.
type SyncResult struct {
	LeaseDuration time.Duration
	Start         string
	Leases        []Lease
}

// Sync registers or renews worker and returns the leases it holds now
// (see the package comment for how they are chosen).
func (m *Manager) Sync(stream, name, worker string) (SyncResult, error) {
	if err := ValidName("worker", worker); err != nil {
		return SyncResult{}, err
	}
	info, err := m.store.DescribeStream(stream)
	if err != nil {
		return SyncResult{}, err
	}
	shards := shardsOf(info)
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.get(stream, name)
	if err != nil {
		return SyncResult{}, err
	}
	now := m.now()
	if _, known := g.st.Workers[worker]; !known && liveWorkers(g.st, now) >= MaxWorkersPerGroup {
		return SyncResult{}, &Error{Field: "worker", Err: ErrLimit, Msg: fmt.Sprintf(
			"consumer group %q has %d live workers, the most it may have", name, MaxWorkersPerGroup)}
	}
	st := g.st.clone()
	leases, ch := Sync(st, shards, worker, now, g.cfg.LeaseDuration)
	old := g.st
	g.st = st
	if ch.Any() {
		if err := m.save(g); err != nil {
			g.st = old
			return SyncResult{}, err
		}
	}
	return SyncResult{LeaseDuration: g.cfg.LeaseDuration, Start: g.cfg.Start, Leases: leases}, nil
}

// Checkpoint records cp for shard if worker holds its lease at epoch.
func (m *Manager) Checkpoint(stream, name, shard, worker string, epoch uint64, cp Checkpoint) error {
	return m.change(stream, name, func(st *State) error { return st.Checkpoint(shard, worker, epoch, cp) })
}

// Release frees shard's lease held by worker at epoch, checkpointing cp
// first when set.
func (m *Manager) Release(stream, name, shard, worker string, epoch uint64, cp *Checkpoint) error {
	return m.change(stream, name, func(st *State) error { return st.Release(shard, worker, epoch, cp) })
}

// Leave unregisters worker and frees its leases.
func (m *Manager) Leave(stream, name, worker string) error {
	return m.change(stream, name, func(st *State) error { st.Leave(worker); return nil })
}

// change applies fn to a group and saves it; a refusal for a lost lease is
// counted.
func (m *Manager) change(stream, name string, fn func(*State) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.get(stream, name)
	if err != nil {
		return err
	}
	// fn works on a copy, so that a failed save leaves memory as the file.
	cp := g.st.clone()
	if err := fn(cp); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			g.refused++
		}
		return err
	}
	old := g.st
	g.st = cp
	if err := m.save(g); err != nil {
		g.st = old
		return err
	}
	return nil
}

// shardsOf lists a stream's shards still in retention.
func shardsOf(info streams.StreamInfo) []Shard {
	shards := make([]Shard, 0, len(info.Shards))
	for _, s := range info.Shards {
		if s.Expired {
			continue
		}
		shards = append(shards, Shard{ID: s.ID, Parent: s.Parent, AdjacentParent: s.AdjacentParent,
			HashKeyStart: s.Range.Start.String(), HashKeyEnd: s.Range.End.String()})
	}
	return shards
}

func liveWorkers(st *State, now time.Time) int {
	n := 0
	for _, exp := range st.Workers {
		if now.Before(exp) {
			n++
		}
	}
	return n
}

func (st *State) clone() *State {
	out := &State{Leases: make(map[string]*Lease, len(st.Leases)), Workers: make(map[string]time.Time, len(st.Workers))}
	for k, l := range st.Leases {
		c := *l
		out.Leases[k] = &c
	}
	for k, v := range st.Workers {
		out.Workers[k] = v
	}
	return out
}

// Groups returns every group, for the metrics.
func (m *Manager) Groups() []Group {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Group, 0, len(m.mu.groups))
	for _, g := range m.mu.groups {
		out = append(out, g.describe())
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.Compare(out[i].Stream+"\x00"+out[i].Name, out[j].Stream+"\x00"+out[j].Name) < 0
	})
	return out
}
