package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/runnel-dev/runnel/internal/testbin"
)

// startKinesisServe runs runnel serve with extra flags until the test ends
// and returns its base URL once hc gets 200 from /healthz.
func startKinesisServe(t *testing.T, data string, scheme string, hc *http.Client, extra ...string) string {
	return testbin.Serve(t, data, scheme, hc, extra...)
}

func sdkClient(base string, hc *http.Client) *sdk.Client {
	return sdk.New(sdk.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(base), HTTPClient: hc,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "k", SecretAccessKey: "s"}, nil
		}),
		RetryMaxAttempts: 1,
	})
}

// TestServeTLSStreamsAtStart: --tls-self-signed serves the Kinesis API
// over HTTPS with HTTP/2 (SubscribeToShard included) to a client that
// trusts the printed certificate, and --streams creates streams at start.
func TestServeTLSStreamsAtStart(t *testing.T) {
	data := t.TempDir()
	// The certificate is made before the server listens; wait for it.
	certFile := filepath.Join(data, "tls-self-signed.pem")
	pool := x509.NewCertPool()
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: pool}}
	hc := &http.Client{Transport: tr}
	waitCert := &http.Client{Transport: &testbin.TrustOnRead{File: certFile, Pool: pool, Next: tr}}
	base := startKinesisServe(t, data, "https", waitCert, "--tls-self-signed", "--streams", "orders:3,clicks:1")

	c := sdkClient(base, hc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ls, err := c.ListStreams(ctx, &sdk.ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ls.StreamNames)
	if strings.Join(ls.StreamNames, ",") != "clicks,orders" {
		t.Fatalf("streams at start: %v", ls.StreamNames)
	}
	sum, err := c.DescribeStreamSummary(ctx, &sdk.DescribeStreamSummaryInput{StreamName: aws.String("orders")})
	if err != nil || *sum.StreamDescriptionSummary.OpenShardCount != 3 {
		t.Fatalf("orders: %v %v", sum, err)
	}
	resp, err := hc.Get(base + "/healthz")
	if err != nil || resp.ProtoMajor != 2 {
		t.Fatalf("HTTPS without HTTP/2: %v %v", resp, err)
	}
	resp.Body.Close()

	arn := *sum.StreamDescriptionSummary.StreamARN
	reg, err := c.RegisterStreamConsumer(ctx, &sdk.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String("tls")})
	if err != nil {
		t.Fatal(err)
	}
	for {
		d, err := c.DescribeStreamConsumer(ctx, &sdk.DescribeStreamConsumerInput{ConsumerARN: reg.Consumer.ConsumerARN})
		if err != nil {
			t.Fatal(err)
		}
		if d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	put, err := c.PutRecord(ctx, &sdk.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("k"), Data: []byte("over tls")})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToShard(ctx, &sdk.SubscribeToShardInput{ConsumerARN: reg.Consumer.ConsumerARN, ShardId: put.ShardId,
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.GetStream().Close()
	for ev := range sub.GetStream().Events() {
		if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok && len(e.Value.Records) > 0 {
			if string(e.Value.Records[0].Data) != "over tls" {
				t.Fatalf("record: %q", e.Value.Records[0].Data)
			}
			return
		}
	}
	t.Fatalf("subscription ended without the record: %v", sub.GetStream().Err())
}

// TestServeInjectFaults: --inject makes the named operations fail at the
// given rate with the given error.
func TestServeInjectFaults(t *testing.T) {
	base := startKinesisServe(t, t.TempDir(), "http", http.DefaultClient, "--inject", "ListStreams:internal:1,PutRecord:throttle:1", "--streams", "s:1")
	c := sdkClient(base, http.DefaultClient)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ae smithy.APIError
	if _, err := c.ListStreams(ctx, &sdk.ListStreamsInput{}); !errors.As(err, &ae) || ae.ErrorCode() != "InternalFailure" {
		t.Fatalf("ListStreams: %v", err)
	}
	if _, err := c.PutRecord(ctx, &sdk.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")}); !errors.As(err, &ae) || ae.ErrorCode() != "ProvisionedThroughputExceededException" {
		t.Fatalf("PutRecord: %v", err)
	}
	if _, err := c.DescribeStreamSummary(ctx, &sdk.DescribeStreamSummaryInput{StreamName: aws.String("s")}); err != nil {
		t.Fatalf("an operation without a fault: %v", err)
	}
	out, err := exec.Command(runnelBinary(t), "serve", "--inject", "PutRecord:slow:0.5").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "kind must be throttle or internal") {
		t.Fatalf("bad --inject accepted: %v\n%s", err, out)
	}
}
