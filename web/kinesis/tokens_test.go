package kinesis

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/streams"
)

// TestIteratorsSurviveRestart: with the token key kept in the data
// directory, a shard iterator and a paging token issued before a restart
// are still good after it (AWS's live for 5 minutes whatever happens to
// the servers); with another key they are invalid.
func TestIteratorsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "kinesis-token.key")
	key, err := LoadTokenKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 || len(key) != 32 {
		t.Fatalf("key file %v (%v), key %d bytes; want mode 0600 and 32 bytes", st, err, len(key))
	}
	start := func(key []byte) (*sdk.Client, func()) {
		store, err := streams.Open(filepath.Join(dir, "data"), streams.Options{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(newHandler(store, Options{CreateDelay: -1, TokenKey: key}))
		return newClient(srv.URL), func() {
			srv.CloseClientConnections()
			srv.Close()
			store.Close()
		}
	}
	c := ctx(t)
	client, stop := start(key)
	if _, err := client.CreateStream(c, &sdk.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	shards, err := client.ListShards(c, &sdk.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(1)})
	if err != nil || shards.NextToken == nil {
		t.Fatalf("list shards: %v, next token %v", err, shards.NextToken)
	}
	its := map[string]*string{}
	for _, id := range []string{"shardId-000000000000", "shardId-000000000001"} {
		it, err := client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(id), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		its[id] = it.ShardIterator
	}
	stop()

	again, err := LoadTokenKey(keyPath)
	if err != nil || string(again) != string(key) {
		t.Fatalf("reloaded key differs (%v)", err)
	}
	client, stop = start(again)
	var got []string
	for _, it := range its {
		out, err := client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: it})
		if err != nil {
			t.Fatalf("iterator from before the restart: %v", err)
		}
		for _, r := range out.Records {
			got = append(got, string(r.Data))
		}
	}
	if strings.Join(got, ",") != "before" {
		t.Fatalf("records read after the restart %q, want [before]", got)
	}
	if _, err := client.ListShards(c, &sdk.ListShardsInput{NextToken: shards.NextToken}); err != nil {
		t.Fatalf("paging token from before the restart: %v", err)
	}
	stop()

	// Another key (a new data directory, say) does not honour them.
	client, stop = start(nil)
	defer stop()
	_, err = client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: its["shardId-000000000000"]})
	apiErr(t, err, "InvalidArgumentException", "Invalid ShardIterator.")
}

func TestLoadTokenKeyRejectsDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokenKey(path); err == nil || !strings.Contains(err.Error(), "5 bytes, want 32") {
		t.Fatalf("a 5-byte key file: %v, want an error naming the size", err)
	}
}
