package testsrv

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPostgresAnswers(t *testing.T) {
	pg := StartPostgres(t)
	conn := pg.Connect(t)
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "select 40 + 2").Scan(&n); err != nil || n != 42 {
		t.Fatalf("select = %d, %v", n, err)
	}
}

// TestKafkaProcessKeepsRecordsAcrossKill produces to the kfake process,
// kills it with SIGKILL, starts it again and reads the record back.
func TestKafkaProcessKeepsRecordsAcrossKill(t *testing.T) {
	p := StartKafkaProcess(t, 2, "t")
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	p.Kill()
	p.Start()
	cl, err = kgo.NewClient(kgo.SeedBrokers(p.Addr), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "v1" {
		t.Fatalf("after restart read %d records", len(recs))
	}
}
