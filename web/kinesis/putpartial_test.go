package kinesis

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/runnel-dev/runnel/internal/testutil/faultfs"
	"github.com/runnel-dev/runnel/streams"
)

// Hash keys that route to shard 0 and to shard 1 of a two-shard stream.
const (
	lowHashKey  = "1"
	highHashKey = "340282366920938463463374607431768211455"
)

// faultyServer is a served handler over a store on an in-memory
// filesystem whose segment writes fail on demand; restart reopens the
// store (as a restarted server does) on the same files.
type faultyServer struct {
	t      *testing.T
	fs     vfs.FS
	fault  *faultfs.Segments
	store  *streams.Store
	srv    *httptest.Server
	client *sdk.Client
}

func newFaultyServer(t *testing.T) *faultyServer {
	f := &faultyServer{t: t, fault: &faultfs.Segments{}}
	f.fs = errorfs.Wrap(vfs.NewMem(), f.fault)
	f.start()
	t.Cleanup(f.stop)
	return f
}

func (f *faultyServer) start() {
	// Without prefill, only the put path's own clean-up keeps a failed
	// write's records from being found after a restart.
	quiet := slog.New(slog.DiscardHandler)
	store, err := streams.Open("/data", streams.Options{FS: f.fs, PrefillBytes: -1, DiskRetry: time.Nanosecond, Logger: quiet})
	if err != nil {
		f.t.Fatal(err)
	}
	f.store = store
	f.srv = httptest.NewServer(newHandler(store, Options{CreateDelay: -1, Logger: quiet}))
	f.client = newClient(f.srv.URL)
}

func (f *faultyServer) stop() {
	if f.srv != nil {
		f.srv.CloseClientConnections()
		f.srv.Close()
		f.store.Close()
		f.srv = nil
	}
}

func (f *faultyServer) restart() {
	f.stop()
	f.start()
}

// entries are n records alternating between shard 0 and shard 1.
func entries(n int) []types.PutRecordsRequestEntry {
	out := make([]types.PutRecordsRequestEntry, n)
	for i := range out {
		hk := lowHashKey
		if i%2 == 1 {
			hk = highHashKey
		}
		out[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(hk), Data: []byte(fmt.Sprintf("record-%d", i))}
	}
	return out
}

// TestPutRecordsPartial makes shard 1's write fail while shard 0's group
// commits: PutRecords answers 200 with each record's result (the SDK sees
// FailedRecordCount and the failed entries' ErrorCode), and sending only
// the failed entries again — after a restart where the shard failed —
// leaves every record stored exactly once, under the sequence numbers
// the answers gave.
func TestPutRecordsPartial(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    errorfs.OpKind
		err     error
		code    string
		restart bool
	}{
		{"sync fails", errorfs.OpFileSyncData, errorfs.ErrInjected, excInternalFailure, true},
		{"write fails", errorfs.OpFileWriteAt, errorfs.ErrInjected, excInternalFailure, true},
		{"disk full", errorfs.OpFileWriteAt, syscall.ENOSPC, excThroughputExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaultyServer(t)
			if _, err := f.store.CreateStream("p", 2, streams.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			ents := entries(10)
			f.fault.Arm(tc.kind, streams.ShardID(1), tc.err)
			out, err := f.client.PutRecords(ctx(t), &sdk.PutRecordsInput{StreamName: aws.String("p"), Records: ents})
			if err != nil {
				t.Fatalf("PutRecords with one shard failing: %v, want a per-record answer", err)
			}
			if aws.ToInt32(out.FailedRecordCount) != 5 || len(out.Records) != 10 {
				t.Fatalf("FailedRecordCount %d of %d records, want 5 of 10", aws.ToInt32(out.FailedRecordCount), len(out.Records))
			}
			seqs := map[string]string{} // data -> sequence number
			var retry []types.PutRecordsRequestEntry
			for i, r := range out.Records {
				switch {
				case i%2 == 0 && (r.ErrorCode != nil || aws.ToString(r.ShardId) != streams.ShardID(0) || r.SequenceNumber == nil):
					t.Fatalf("record %d (shard 0) not answered as stored: %+v", i, r)
				case i%2 == 1 && (aws.ToString(r.ErrorCode) != tc.code || r.SequenceNumber != nil || r.ShardId != nil ||
					!strings.Contains(aws.ToString(r.ErrorMessage), streams.ShardID(1)) || strings.Contains(aws.ToString(r.ErrorMessage), "/data")):
					t.Fatalf("record %d (shard 1) not answered as failed with %s: code %q message %q", i, tc.code, aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
				case i%2 == 1:
					retry = append(retry, ents[i])
				default:
					seqs[string(ents[i].Data)] = aws.ToString(r.SequenceNumber)
				}
			}
			if tc.restart {
				// A put only to the failed shard stores nothing: the
				// whole request fails, as before.
				_, err := f.client.PutRecords(ctx(t), &sdk.PutRecordsInput{StreamName: aws.String("p"), Records: retry})
				apiErr(t, err, excInternalFailure, "")
				f.restart()
			}
			again, err := f.client.PutRecords(ctx(t), &sdk.PutRecordsInput{StreamName: aws.String("p"), Records: retry})
			if err != nil || aws.ToInt32(again.FailedRecordCount) != 0 {
				t.Fatalf("retry of the failed entries: %v, %+v", err, again)
			}
			for i, r := range again.Records {
				seqs[string(retry[i].Data)] = aws.ToString(r.SequenceNumber)
			}
			checkStoredOnce(t, f.store, "p", ents, seqs)
		})
	}
}

// checkStoredOnce reads both shards of stream and checks that every entry
// is there once, under the sequence number its answer gave.
func checkStoredOnce(t *testing.T, store *streams.Store, stream string, ents []types.PutRecordsRequestEntry, seqs map[string]string) {
	t.Helper()
	got := map[string][]string{}
	for i := 0; i < 2; i++ {
		rr, err := store.Read(stream, streams.ShardID(i), 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range rr.Records {
			got[string(rec.Data)] = append(got[string(rec.Data)], streams.FormatSeq(rr.Tag, i, rec.Seq))
		}
	}
	if len(got) != len(ents) {
		t.Fatalf("the stream holds %d distinct records, want %d: %v", len(got), len(ents), got)
	}
	for _, e := range ents {
		d := string(e.Data)
		if len(got[d]) != 1 || got[d][0] != seqs[d] {
			t.Fatalf("record %s stored under %v, want once under %s", d, got[d], seqs[d])
		}
	}
}

// TestPutRecordsResultEncodings renders an answer that mixes stored
// records, records the throughput limits refused and records the log did
// not store, in JSON and in CBOR: both say the same, record by record.
func TestPutRecordsResultEncodings(t *testing.T) {
	h, _ := storeHandler(t, Options{CreateDelay: -1}, "e", 1)
	shards := []string{"shardId-000000000000", "shardId-000000000001", "shardId-000000000000", "shardId-000000000001", "shardId-000000000002", "shardId-000000000001"}
	refused := []*apiError{nil, h.throttledWrite("e", shards[1]), nil, nil, h.throttledWrite("e", shards[4]), nil}
	res := []streams.PutResult{
		{ShardID: shards[0], ShardIndex: 0, Tag: 7, Seq: 1},
		{ShardID: shards[2], ShardIndex: 0, Tag: 7, Seq: 2},
		{ShardID: shards[3], ShardIndex: 1, Err: fmt.Errorf("put: %w", streams.ErrUnavailable)},
		{ShardID: shards[5], ShardIndex: 1, Err: errors.New("write segment /secret/path: input/output error")},
	}
	want := []putRecordsResult{
		{ShardId: shards[0], SequenceNumber: streams.FormatSeq(7, 0, 1)},
		{ErrorCode: excThroughputExceeded, ErrorMessage: h.throttledWrite("e", shards[1]).Message},
		{ShardId: shards[2], SequenceNumber: streams.FormatSeq(7, 0, 2)},
		{ErrorCode: excThroughputExceeded, ErrorMessage: h.recordFailure("e", &res[2]).Message},
		{ErrorCode: excThroughputExceeded, ErrorMessage: h.throttledWrite("e", shards[4]).Message},
		{ErrorCode: excInternalFailure, ErrorMessage: h.recordFailure("e", &res[3]).Message},
	}
	if strings.Contains(want[5].ErrorMessage, "/secret") || !strings.Contains(want[3].ErrorMessage, "disk is full") {
		t.Fatalf("per-record messages: %q, %q", want[3].ErrorMessage, want[5].ErrorMessage)
	}
	for _, c := range []codec{codecJSON, codecCBOR} {
		var out putRecordsOutput
		if err := decode(c, h.appendPutRecordsResult(c, "e", res, 2, refused, false), &out); err != nil {
			t.Fatalf("codec %d: %v", c, err)
		}
		if out.FailedRecordCount != 4 || !reflect.DeepEqual(out.Records, want) {
			t.Fatalf("codec %d: failed %d, records\n%+v\nwant\n%+v", c, out.FailedRecordCount, out.Records, want)
		}
	}
}
