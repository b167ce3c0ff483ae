package streams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func openTest(t *testing.T, dir string, o Options) *Store {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func put(t *testing.T, s *Store, stream string, recs ...PutRecord) []PutResult {
	t.Helper()
	res, err := s.Put(context.Background(), stream, recs)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	return res
}

func readAllShard(t *testing.T, s *Store, stream, shard string) []Record {
	t.Helper()
	var out []Record
	pos := uint64(0)
	for {
		r, err := s.Read(stream, shard, pos, 0, 0)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		out = append(out, r.Records...)
		if len(r.Records) == 0 {
			return out
		}
		pos = r.Next
	}
}

func TestPutReadRestart(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if _, err := s.CreateStream("clicks", 4, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for i := 0; i < 1000; i++ {
		key := fmt.Sprintf("user-%d", i%37)
		data := fmt.Sprintf("event-%d", i)
		res := put(t, s, "clicks", PutRecord{PartitionKey: key, Data: []byte(data)})
		want[res[0].ShardID] = append(want[res[0].ShardID], data)
	}
	check := func(s *Store) {
		for _, sh := range []string{ShardID(0), ShardID(1), ShardID(2), ShardID(3)} {
			got := readAllShard(t, s, "clicks", sh)
			if len(got) != len(want[sh]) {
				t.Fatalf("%s: got %d records, want %d", sh, len(got), len(want[sh]))
			}
			for i, r := range got {
				if string(r.Data) != want[sh][i] {
					t.Fatalf("%s record %d: got %q want %q", sh, i, r.Data, want[sh][i])
				}
				if r.Seq != uint64(i+1) {
					t.Fatalf("%s record %d: seq %d", sh, i, r.Seq)
				}
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	defer s.Close()
	check(s)
	res := put(t, s, "clicks", PutRecord{PartitionKey: "user-1", Data: []byte("after")})
	if res[0].Seq != uint64(len(want[res[0].ShardID])+1) {
		t.Fatalf("sequence after restart: got %d want %d", res[0].Seq, len(want[res[0].ShardID])+1)
	}
}

func TestValidationWritesNothing(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	if _, err := s.CreateStream("s", 1, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		recs  []PutRecord
		field string
	}{
		{"empty key", []PutRecord{{PartitionKey: "a", Data: []byte("x")}, {PartitionKey: "", Data: []byte("y")}}, "records[1].partition_key"},
		{"long key", []PutRecord{{PartitionKey: string(make([]byte, 257)), Data: nil}}, "records[0].partition_key"},
		{"big data", []PutRecord{{PartitionKey: "k", Data: make([]byte, MaxDataSize+1)}}, "records[0].data"},
		{"bad hash key", []PutRecord{{PartitionKey: "k", ExplicitHashKey: "340282366920938463463374607431768211456"}}, "records[0].explicit_hash_key"},
	}
	for _, c := range cases {
		_, err := s.Put(context.Background(), "s", c.recs)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) || e.Field != c.field {
			t.Errorf("%s: got %v, want invalid %s", c.name, err, c.field)
		}
	}
	if got := readAllShard(t, s, "s", ShardID(0)); len(got) != 0 {
		t.Fatalf("invalid puts wrote %d records", len(got))
	}
	for _, name := range []string{"", "a/b", "..", string(make([]byte, 129))} {
		if _, err := s.CreateStream(name, 1, CreateOptions{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("create %q: got %v, want invalid", name, err)
		}
	}
	if _, err := s.CreateStream("s", 1, CreateOptions{}); !errors.Is(err, ErrStreamExists) {
		t.Errorf("duplicate create: %v", err)
	}
	if _, err := s.CreateStream("z", 0, CreateOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("0 shards: %v", err)
	}
	if _, err := s.CreateStream("z", 1, CreateOptions{RetentionHours: 23}); !errors.Is(err, ErrInvalid) {
		t.Errorf("retention 23h: %v", err)
	}
}

// A put whose caller has already gone stores nothing: an HTTP client that
// gave up sends it again, so storing it would only make a duplicate.
func TestPutOfGoneCallerStoresNothing(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	if _, err := s.CreateStream("s", 2, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Put(ctx, "s", []PutRecord{{PartitionKey: "a", Data: []byte("x")}, {PartitionKey: "b", Data: []byte("y")}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("put with a cancelled context: %v, want context.Canceled", err)
	}
	put(t, s, "s", PutRecord{PartitionKey: "c", Data: []byte("z")})
	n := 0
	for _, sh := range []string{"shardId-000000000000", "shardId-000000000001"} {
		n += len(readAllShard(t, s, "s", sh))
	}
	if n != 1 {
		t.Fatalf("stream holds %d records, want only the 1 put after", n)
	}
}
