package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/twmb/franz-go/pkg/kadm"

	s3sink "github.com/runnel-dev/runnel/sinks/s3"
	"github.com/runnel-dev/runnel/state"
)

// DefaultSnapshotEvery is how many commits apart a worker writes its
// tasks' snapshots.
const DefaultSnapshotEvery = 20

// SnapshotStore is where workers keep their tasks' snapshots: an
// S3-compatible bucket and a key prefix.
type SnapshotStore struct {
	Bucket, Prefix string
	// Endpoint, Region and PathStyle configure the client (an empty
	// Endpoint: AWS's for the region; an empty Region: the AWS
	// configuration's).
	Endpoint, Region string
	PathStyle        bool
}

// ParseSnapshotURL parses s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true].
func ParseSnapshotURL(s string) (*SnapshotStore, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("cluster: snapshot %q: give s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true]", s)
	}
	st := &SnapshotStore{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "path_style":
		default:
			return nil, fmt.Errorf("cluster: snapshot %q: unknown parameter %q (endpoint, region, path_style)", s, k)
		}
	}
	st.Endpoint = q.Get("endpoint")
	if r := q.Get("region"); r != "" {
		st.Region = r
	}
	if p := q.Get("path_style"); p != "" {
		if st.PathStyle, err = strconv.ParseBool(p); err != nil {
			return nil, fmt.Errorf("cluster: snapshot %q: path_style %q: give true or false", s, p)
		}
	} else {
		// An explicit endpoint is most often a local S3-compatible
		// server, which serves buckets by path.
		st.PathStyle = st.Endpoint != ""
	}
	return st, nil
}

// A snapshot object holds one task's local state as of a changelog offset
// of the changelog topic with a topic ID:
//
//	"RNLSNAP2" offset(8, big endian) topic ID(16) count(uvarint)
//	count × (uvarint(len(key)) key uvarint(len(value)) value)
//	crc32c(everything before)(4, big endian)
//
// Its key is PREFIX/<job>/<operator>/<partition>. It is written from the
// task's local state, which is a prefix of the committed changelog, so a
// task restoring from it reads the changelog on after its offset, if the
// changelog topic still has its ID. A "RNLSNAP1" object, written before
// snapshots recorded the ID, has no topic ID field: it decodes with an
// all-zero ID.
const (
	snapMagic   = "RNLSNAP2"
	snapMagicV1 = "RNLSNAP1"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errSnapshot marks a snapshot object that does not decode.
var errSnapshot = errors.New("cluster: bad snapshot")

func encodeSnapshot(upTo int64, id kadm.TopicID, sp *state.Space) ([]byte, int, error) {
	var body bytes.Buffer
	n := 0
	err := sp.Scan(nil, func(k, v []byte) error {
		if isLocalMeta(k) {
			return nil
		}
		n++
		body.Write(binary.AppendUvarint(nil, uint64(len(k))))
		body.Write(k)
		body.Write(binary.AppendUvarint(nil, uint64(len(v))))
		body.Write(v)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	b := make([]byte, 0, len(snapMagic)+8+len(id)+binary.MaxVarintLen64+body.Len()+4)
	b = append(b, snapMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(upTo))
	b = append(b, id[:]...)
	b = binary.AppendUvarint(b, uint64(n))
	b = append(b, body.Bytes()...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), n, nil
}

// snapHead is what a snapshot's records are a copy of: the changelog
// offset they go up to (included) and the changelog topic's ID.
type snapHead struct {
	upTo int64
	id   kadm.TopicID
}

func decodeSnapshot(b []byte) (snapHead, []Change, error) {
	var h snapHead
	idLen := len(h.id)
	if len(b) >= len(snapMagic) && string(b[:len(snapMagicV1)]) == snapMagicV1 {
		idLen = 0
	} else if len(b) < len(snapMagic) || string(b[:len(snapMagic)]) != snapMagic {
		return h, nil, fmt.Errorf("%w: not a snapshot (%d bytes)", errSnapshot, len(b))
	}
	if len(b) < len(snapMagic)+8+idLen+1+4 {
		return h, nil, fmt.Errorf("%w: %d bytes are too few", errSnapshot, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return h, nil, fmt.Errorf("%w: checksum mismatch", errSnapshot)
	}
	h.upTo = int64(binary.BigEndian.Uint64(body[len(snapMagic):]))
	rest := body[len(snapMagic)+8:]
	copy(h.id[:], rest[:idLen])
	rest = rest[idLen:]
	n, used := binary.Uvarint(rest)
	if used <= 0 {
		return h, nil, fmt.Errorf("%w: record count", errSnapshot)
	}
	rest = rest[used:]
	next := func() ([]byte, bool) {
		l, used := binary.Uvarint(rest)
		if used <= 0 || uint64(len(rest)-used) < l {
			return nil, false
		}
		out := rest[used : used+int(l)]
		rest = rest[used+int(l):]
		return out, true
	}
	out := make([]Change, 0, min(n, 1<<20))
	for i := uint64(0); i < n; i++ {
		k, ok1 := next()
		v, ok2 := next()
		if !ok1 || !ok2 {
			return h, nil, fmt.Errorf("%w: record %d of %d is cut", errSnapshot, i, n)
		}
		out = append(out, Change{Key: k, Value: v})
	}
	if len(rest) != 0 {
		return h, nil, fmt.Errorf("%w: %d bytes after the last record", errSnapshot, len(rest))
	}
	return h, out, nil
}

// snapshots writes and reads a worker's task snapshots.
type snapshots struct {
	store *SnapshotStore
	job   string
	cl    *s3.Client
	every int

	commits int
	mu      sync.Mutex          // guards last: a failed upload forgets its task's
	last    map[string]snapHead // task → what its last snapshot taken copies
	wg      sync.WaitGroup
	busy    sync.Mutex // held while a round uploads
}

func newSnapshots(ctx context.Context, st *SnapshotStore, job string, every int) (*snapshots, error) {
	cl, err := s3sink.NewClient(ctx, st.Endpoint, st.Region, "", st.PathStyle)
	if err != nil {
		return nil, fmt.Errorf("cluster: snapshot store: %w", err)
	}
	return &snapshots{store: st, job: job, cl: cl, every: every, last: map[string]snapHead{}}, nil
}

func (s *snapshots) key(op string, partition int32) string {
	k := fmt.Sprintf("%s/%s/%d", s.job, op, partition)
	if s.store.Prefix != "" {
		k = s.store.Prefix + "/" + k
	}
	return k
}

// get returns a task's snapshot, or ok false when there is none.
func (s *snapshots) get(ctx context.Context, op string, partition int32) (h snapHead, changes []Change, ok bool, err error) {
	out, err := s.cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.store.Bucket), Key: aws.String(s.key(op, partition))})
	if err != nil {
		var nk *types.NoSuchKey
		if errors.As(err, &nk) {
			return h, nil, false, nil
		}
		return h, nil, false, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return h, nil, false, err
	}
	h, changes, err = decodeSnapshot(b)
	return h, changes, err == nil, err
}

// snapshotAfterCommit counts a commit and, every s.every commits, encodes the
// local state of each task that changed since its last snapshot and
// uploads them in the background (a round still uploading skips this
// one).
//
// A task's local state changed if its offset or its changelog topic ID
// did: after its changelog topic was deleted and created again, the task
// restores from the new topic and may come to the offset of its last
// snapshot of the old one, which restores ignore; the offset alone would
// keep that snapshot as the task's latest until the task's state next
// changes. The offset, the ID and the records a snapshot holds are read
// from the local state, where they are written in one batch (writeLocal)
// by this goroutine, so a snapshot never records the new topic's ID with
// the old topic's records.
func (w *Worker) snapshotAfterCommit() {
	s := w.snap
	s.commits++
	if s.commits%s.every != 0 || !s.busy.TryLock() {
		return
	}
	type obj struct {
		key, task string
		upTo      int64
		body      []byte
	}
	var objs []obj
	for _, t := range w.tasks {
		if t.space == nil {
			continue
		}
		upTo, ok, err := localOffset(t.space)
		if err != nil {
			w.fail(FailLocalState, t.name, "snapshot not taken: the local state's offset does not read", err)
			continue
		}
		if !ok {
			continue
		}
		id, err := localTopicID(t.space)
		if err != nil {
			w.fail(FailLocalState, t.name, "snapshot not taken: the local state's changelog topic ID does not read", err)
			continue
		}
		head := snapHead{upTo: upTo, id: id}
		s.mu.Lock()
		last, taken := s.last[t.name]
		s.mu.Unlock()
		if taken && last == head {
			continue
		}
		b, _, err := encodeSnapshot(upTo, id, t.space)
		if err != nil {
			w.fail(FailLocalState, t.name, "snapshot not taken: the local state does not read", err)
			continue
		}
		objs = append(objs, obj{s.key(t.stage.Keyed, t.id.partition), t.name, upTo, b})
		s.mu.Lock()
		s.last[t.name] = head
		s.mu.Unlock()
	}
	if len(objs) == 0 {
		s.busy.Unlock()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.busy.Unlock()
		for _, o := range objs {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := s.cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.store.Bucket), Key: aws.String(o.key),
				Body: bytes.NewReader(o.body)})
			cancel()
			if err != nil {
				// The task's changelog still holds its state: a restore
				// reads more of it.
				w.fail(FailSnapshotUpload, o.task, fmt.Sprintf("snapshot upload to bucket %s key %s failed: a restore elsewhere reads more of the task's changelog", s.store.Bucket, o.key), err)
				// Take it again next round.
				s.mu.Lock()
				delete(s.last, o.task)
				s.mu.Unlock()
				continue
			}
			w.cfg.Log.Debug("snapshot written", "task", o.task, "key", o.key, "offset", o.upTo, "bytes", len(o.body))
		}
	}()
}
