package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/consumergroups"
)

// serverStore keeps leases on a Runnel server through its consumer-groups
// API (docs/api.md).
type serverStore struct {
	base   string // .../api/v1/streams/STREAM/consumer-groups
	group  string
	token  string
	create consumergroups.Config
	hc     *http.Client
}

// ServerLeases returns the lease store of group on the Runnel server at
// serverURL. The group is created with create's LeaseDuration and Start
// when the first Sync finds it missing. token is a bearer token ("" with
// auth off).
func ServerLeases(serverURL, stream, group, token string, create consumergroups.Config) LeaseStore {
	return &serverStore{
		base:  strings.TrimRight(serverURL, "/") + "/api/v1/streams/" + url.PathEscape(stream) + "/consumer-groups",
		group: group, token: token, create: create, hc: &http.Client{Timeout: 30 * time.Second},
	}
}

// apiError is the server's error body.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("runnel consumer groups: %d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap makes a lease_lost answer an ErrLeaseLost.
func (e *apiError) Unwrap() error {
	if e.Code == "lease_lost" {
		return consumergroups.ErrLeaseLost
	}
	return nil
}

func (s *serverStore) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error apiError `json:"error"`
		}
		json.Unmarshal(b, &e)
		e.Error.Status = resp.StatusCode
		return &e.Error
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

type leaseWire struct {
	Shard            string `json:"shard"`
	Parent           string `json:"parent"`
	AdjacentParent   string `json:"adjacent_parent"`
	HashKeyStart     string `json:"hash_key_start"`
	HashKeyEnd       string `json:"hash_key_end"`
	Owner            string `json:"owner"`
	Epoch            uint64 `json:"epoch"`
	SequenceNumber   string `json:"sequence_number"`
	SubSequence      uint64 `json:"sub_sequence_number"`
	ReleaseRequested bool   `json:"release_requested"`
}

func (s *serverStore) Sync(ctx context.Context, worker string) (SyncResult, error) {
	var out struct {
		LeaseDurationMS int64       `json:"lease_duration_ms"`
		Start           string      `json:"start"`
		Leases          []leaseWire `json:"leases"`
	}
	path := "/" + url.PathEscape(s.group) + "/workers/" + url.PathEscape(worker) + "/sync"
	err := s.call(ctx, "POST", path, nil, &out)
	if e, ok := err.(*apiError); ok && e.Status == http.StatusNotFound && e.Field == "group" {
		cerr := s.call(ctx, "POST", "", map[string]any{"name": s.group,
			"lease_duration_ms": s.create.LeaseDuration.Milliseconds(), "start": s.create.Start}, nil)
		if e, ok := cerr.(*apiError); cerr != nil && (!ok || e.Code != "already_exists") {
			return SyncResult{}, fmt.Errorf("create consumer group %s: %w", s.group, cerr)
		}
		err = s.call(ctx, "POST", path, nil, &out)
	}
	if err != nil {
		return SyncResult{}, err
	}
	res := SyncResult{LeaseDuration: time.Duration(out.LeaseDurationMS) * time.Millisecond, Start: out.Start}
	for _, l := range out.Leases {
		res.Leases = append(res.Leases, consumergroups.Lease{Shard: l.Shard, Parent: l.Parent, AdjacentParent: l.AdjacentParent,
			HashKeyStart: l.HashKeyStart, HashKeyEnd: l.HashKeyEnd, Owner: l.Owner, Epoch: l.Epoch,
			Checkpoint:       consumergroups.Checkpoint{SequenceNumber: l.SequenceNumber, SubSequenceNumber: l.SubSequence},
			ReleaseRequested: l.ReleaseRequested})
	}
	return res, nil
}

type leaseBody struct {
	Worker         string `json:"worker"`
	Epoch          uint64 `json:"epoch"`
	SequenceNumber string `json:"sequence_number,omitempty"`
	SubSequence    uint64 `json:"sub_sequence_number,omitempty"`
}

func (s *serverStore) Checkpoint(ctx context.Context, shard, worker string, epoch uint64, cp consumergroups.Checkpoint) error {
	return s.call(ctx, "POST", "/"+url.PathEscape(s.group)+"/shards/"+url.PathEscape(shard)+"/checkpoint",
		leaseBody{worker, epoch, cp.SequenceNumber, cp.SubSequenceNumber}, nil)
}

func (s *serverStore) Release(ctx context.Context, shard, worker string, epoch uint64, cp *consumergroups.Checkpoint) error {
	body := leaseBody{Worker: worker, Epoch: epoch}
	if cp != nil {
		body.SequenceNumber, body.SubSequence = cp.SequenceNumber, cp.SubSequenceNumber
	}
	return s.call(ctx, "POST", "/"+url.PathEscape(s.group)+"/shards/"+url.PathEscape(shard)+"/release", body, nil)
}

// Leave frees worker's leases. A group that does not exist (no Sync
// created it, or it was deleted) holds nothing to leave.
func (s *serverStore) Leave(ctx context.Context, worker string) error {
	err := s.call(ctx, "DELETE", "/"+url.PathEscape(s.group)+"/workers/"+url.PathEscape(worker), nil, nil)
	if e, ok := err.(*apiError); ok && e.Status == http.StatusNotFound && e.Field == "group" {
		return nil
	}
	return err
}
