package web

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/runnel-dev/runnel/web/auth"
	"golang.org/x/net/http2"
)

// sdkClient is an unchanged AWS SDK for Go client with the given keys.
// h2 makes it speak cleartext HTTP/2, as the SDK does for SubscribeToShard
// where the endpoint offers it.
func (e *authEnv) sdkClient(keyID, secret string, h2 bool) *sdk.Client {
	o := sdk.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(e.ts.URL),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, nil
		})),
		Retryer: retry.AddWithMaxAttempts(retry.NewStandard(), 1),
	}
	if h2 {
		o.HTTPClient = &http.Client{Transport: &http2.Transport{AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}}}
	}
	return sdk.New(o)
}

func (e *authEnv) sdkFor(who string) *sdk.Client {
	c := e.tokens[who]
	return e.sdkClient(c.AccessKeyID, c.SecretAccessKey, false)
}

func awsCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestKinesisSigV4 checks SigV4 with the AWS SDK for Go against a real
// loopback server: a good key works, a wrong secret, an unknown key and a
// skewed clock get AWS's exceptions.
func TestKinesisSigV4(t *testing.T) {
	var skew time.Duration
	e := newAuthEnv(t, Security{Auth: true, Now: func() time.Time { return time.Now().Add(skew) }})
	w := e.tokens["writer"]
	good := e.sdkClient(w.AccessKeyID, w.SecretAccessKey, false)
	if _, err := good.CreateStream(tctx(t), &sdk.CreateStreamInput{StreamName: aws.String("k1"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("good key: %v", err)
	}
	if _, err := good.PutRecord(tctx(t), &sdk.PutRecordInput{StreamName: aws.String("k1"), PartitionKey: aws.String("p"), Data: []byte("x")}); err != nil {
		t.Fatalf("good key put: %v", err)
	}
	for _, tc := range []struct {
		name   string
		client *sdk.Client
		skew   time.Duration
		want   string
	}{
		{"wrong secret", e.sdkClient(w.AccessKeyID, strings.Repeat("x", 40), false), 0, "InvalidSignatureException: The request signature we calculated does not match the signature you provided."},
		{"unknown key", e.sdkClient("AKRNNOTAKEY000000000", w.SecretAccessKey, false), 0, "UnrecognizedClientException: The security token included in the request is invalid."},
		{"client clock 10 min slow", good, 10 * time.Minute, "InvalidSignatureException: Signature expired: "},
		{"client clock 10 min fast", good, -10 * time.Minute, "InvalidSignatureException: Signature not yet current: "},
		{"bearer token's secret as AWS secret", e.sdkClient(w.AccessKeyID, w.Secret, false), 0, "InvalidSignatureException"},
	} {
		skew = tc.skew
		_, err := tc.client.PutRecord(tctx(t), &sdk.PutRecordInput{StreamName: aws.String("k1"), PartitionKey: aws.String("p"), Data: []byte("x")})
		if got := awsCode(err); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: got %q, want %q…", tc.name, got, tc.want)
		}
	}
	skew = 0
	// An unsigned request and an unknown bearer token get AWS's answers; a
	// known bearer token (what runnel put and the producer may send) works.
	for _, tc := range []struct{ header, wantType string }{
		{"", "MissingAuthenticationTokenException"},
		{"Bearer rn_not-a-token", "UnrecognizedClientException"},
		{"Bearer " + w.Secret, ""},
	} {
		req, _ := http.NewRequest("POST", e.ts.URL+"/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
		req.Header.Set("Authorization", tc.header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		et := resp.Header.Get("X-Amzn-Errortype")
		if tc.wantType == "" && (resp.StatusCode != 200 || et != "") {
			t.Errorf("Authorization %q: %d %s, want 200", tc.header, resp.StatusCode, et)
		}
		if tc.wantType != "" && (resp.StatusCode != 400 || et != tc.wantType) {
			t.Errorf("Authorization %q: %d %s, want 400 %s", tc.header, resp.StatusCode, et, tc.wantType)
		}
	}
}

// TestKinesisRoles checks that operations need their role and that a
// token limited to streams can only name those, by StreamName, ARN,
// consumer ARN and shard iterator; and SubscribeToShard over HTTP/2.
func TestKinesisRoles(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	admin, writer, reader := e.sdkFor("admin"), e.sdkFor("writer"), e.sdkFor("reader")
	lw, lr := e.sdkFor("limited-writer"), e.sdkFor("limited-reader")
	for _, name := range []string{"k1", "other-1"} {
		if _, err := writer.CreateStream(tctx(t), &sdk.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(c *sdk.Client, stream string) error {
		_, err := c.PutRecords(tctx(t), &sdk.PutRecordsInput{StreamName: aws.String(stream), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("p"), Data: []byte("x")}}})
		return err
	}
	denied := "AccessDeniedException"
	check := func(what string, err error, want string) {
		t.Helper()
		if got := awsCode(err); !strings.HasPrefix(got, want) {
			t.Errorf("%s: got %q, want %s", what, got, want)
		}
	}
	check("reader puts", put(reader, "k1"), denied)
	check("writer puts", put(writer, "k1"), "ok")
	_, err := writer.DeleteStream(tctx(t), &sdk.DeleteStreamInput{StreamName: aws.String("k1")})
	check("writer deletes", err, denied)
	check("limited writer puts to k1", put(lw, "k1"), denied)
	check("limited writer puts to other-1", put(lw, "other-1"), "ok")
	_, err = lr.DescribeStreamSummary(tctx(t), &sdk.DescribeStreamSummaryInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/k1")})
	check("limited reader describes k1 by ARN", err, denied)
	_, err = lr.ListStreams(tctx(t), &sdk.ListStreamsInput{})
	check("limited reader lists", err, "ok")
	// Shard iterators carry their stream: one for k1 (made by an
	// unlimited reader) is refused to the limited reader.
	it, err := reader.GetShardIterator(tctx(t), &sdk.GetShardIteratorInput{StreamName: aws.String("k1"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	_, err = lr.GetRecords(tctx(t), &sdk.GetRecordsInput{ShardIterator: it.ShardIterator})
	check("limited reader reads k1 by iterator", err, denied)
	it, err = lr.GetShardIterator(tctx(t), &sdk.GetShardIteratorInput{StreamName: aws.String("other-1"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := lr.GetRecords(tctx(t), &sdk.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(recs.Records) != 1 {
		t.Fatalf("limited reader reads other-1: %v %v", err, recs)
	}
	// Enhanced fan-out over HTTP/2: the consumer ARN names the stream.
	reg, err := reader.RegisterStreamConsumer(tctx(t), &sdk.RegisterStreamConsumerInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/other-1"), ConsumerName: aws.String("c")})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		d, err := reader.DescribeStreamConsumer(tctx(t), &sdk.DescribeStreamConsumerInput{ConsumerARN: reg.Consumer.ConsumerARN})
		if err == nil && d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	lc := e.tokens["limited-reader"]
	h2 := e.sdkClient(lc.AccessKeyID, lc.SecretAccessKey, true)
	sub, err := h2.SubscribeToShard(tctx(t), &sdk.SubscribeToShardInput{ConsumerARN: reg.Consumer.ConsumerARN, ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}})
	if err != nil {
		t.Fatalf("SubscribeToShard over HTTP/2: %v", err)
	}
	st := sub.GetStream()
	defer st.Close()
	select {
	case ev, ok := <-st.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", st.Err())
		}
		v, isEv := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !isEv || len(v.Value.Records) != 1 {
			t.Fatalf("first event: %#v", ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no SubscribeToShard event")
	}
	_, err = admin.DeleteStream(tctx(t), &sdk.DeleteStreamInput{StreamName: aws.String("k1")})
	check("admin deletes", err, "ok")
}

// TestKinesisPayloadHash checks the X-Amz-Content-Sha256 cases: a body
// signed as UNSIGNED-PAYLOAD (as streamed and event-stream bodies are) is
// accepted, a declared hash must match the body, and a body changed after
// signing is caught.
func TestKinesisPayloadHash(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	w := e.tokens["writer"]
	body := `{"StreamName":"s"}`
	send := func(payloadHeader, signedHash, sent string) string {
		req, _ := http.NewRequest("POST", e.ts.URL+"/", strings.NewReader(sent))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.DescribeStreamSummary")
		if payloadHeader != "" {
			req.Header.Set("X-Amz-Content-Sha256", payloadHeader)
		}
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: w.AccessKeyID, SecretAccessKey: w.SecretAccessKey},
			req, signedHash, "kinesis", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if et := resp.Header.Get("X-Amzn-Errortype"); et != "" {
			return et
		}
		return "ok"
	}
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name                 string
		header, signed, sent string
		want                 string
	}{
		{"body hashed, no header", "", hash, body, "ok"},
		{"UNSIGNED-PAYLOAD", auth.UnsignedPayload, auth.UnsignedPayload, body, "ok"},
		{"declared hash matches", hash, hash, body, "ok"},
		{"declared hash does not match the body", hash, hash, `{"StreamName":"x"}`, auth.ExcInvalidSignature},
		{"body changed after signing", "", hash, `{"StreamName":"x"}`, auth.ExcInvalidSignature},
		{"aws-chunked", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", body, auth.ExcInvalidSignature},
	} {
		if got := send(tc.header, tc.signed, tc.sent); got != tc.want && !(tc.want == "ok" && got == "ResourceNotFoundException") {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestKinesisChannelsNeedUnlimitedAdmin: a channel delivers a stream to S3
// with the server's own credentials, so a token limited to streams may not
// create, update or delete one, even naming a stream it may use; an
// unlimited admin may.
func TestKinesisChannelsNeedUnlimitedAdmin(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	admin, la := e.sdkFor("admin"), e.sdkFor("limited-admin")
	if _, err := admin.CreateStream(tctx(t), &sdk.CreateStreamInput{StreamName: aws.String("other-1"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	create := func(c *sdk.Client) error {
		_, err := c.CreateChannel(tctx(t), &sdk.CreateChannelInput{ChannelName: aws.String("ch"),
			ServiceExecutionRoleARN: aws.String("arn:aws:iam::000000000000:role/r"),
			StreamConfigurationList: []types.ChannelStreamConfiguration{{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/other-1"),
				RecordConfiguration: &types.RecordConfiguration{RecordFormatType: types.RecordFormatTypeJson}}},
			S3DestinationConfiguration: &types.S3DestinationConfiguration{
				StorageConfiguration: &types.S3StorageConfiguration{BucketARN: aws.String("arn:aws:s3:::lake"),
					CompressionType: types.S3CompressionTypeGzip, ExpectedBucketOwner: aws.String("000000000000")}}})
		return err
	}
	denied := "AccessDeniedException"
	if got := awsCode(create(la)); !strings.HasPrefix(got, denied) {
		t.Errorf("limited admin creates a channel over its own stream: got %q, want %s", got, denied)
	}
	_, err := la.UpdateChannel(tctx(t), &sdk.UpdateChannelInput{ChannelARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:channel/ch")})
	if got := awsCode(err); !strings.HasPrefix(got, denied) {
		t.Errorf("limited admin updates a channel: got %q, want %s", got, denied)
	}
	_, err = la.DeleteChannel(tctx(t), &sdk.DeleteChannelInput{ChannelARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:channel/ch")})
	if got := awsCode(err); !strings.HasPrefix(got, denied) {
		t.Errorf("limited admin deletes a channel: got %q, want %s", got, denied)
	}
	if got := awsCode(create(admin)); strings.HasPrefix(got, denied) {
		t.Errorf("admin creates a channel: got %q, want anything but %s", got, denied)
	}
}
