package web

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/runnel-dev/runnel/web/auth"
)

// TestKinesisResourcePolicies checks that stored resource policies are
// enforced through the AWS SDK for the principals the token store knows:
// an explicit Deny refuses one key while a second key of the same role
// goes on, an Allow lets a token do what its role or stream grants alone
// do not, a consumer's own policy governs calls that name the consumer,
// and deleting the policy restores the roles' answers.
func TestKinesisResourcePolicies(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	c2, err := e.srv.sec.Tokens.Create("writer-2", auth.Writer, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	admin, writer, reader := e.sdkFor("admin"), e.sdkFor("writer"), e.sdkFor("reader")
	writer2 := e.sdkClient(c2.AccessKeyID, c2.SecretAccessKey, false)
	lw := e.sdkFor("limited-writer")
	const arn = "arn:aws:kinesis:us-east-1:000000000000:stream/"
	for _, name := range []string{"pol", "free"} {
		if _, err := admin.CreateStream(tctx(t), &sdk.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(c *sdk.Client, stream string) string {
		_, err := c.PutRecords(tctx(t), &sdk.PutRecordsInput{StreamName: aws.String(stream), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("p"), Data: []byte("x")}}})
		return awsCode(err)
	}
	putOne := func(c *sdk.Client, stream string) string {
		_, err := c.PutRecord(tctx(t), &sdk.PutRecordInput{StreamARN: aws.String(arn + stream), PartitionKey: aws.String("p"), Data: []byte("x")})
		return awsCode(err)
	}
	iter := func(c *sdk.Client, stream string) string {
		_, err := c.GetShardIterator(tctx(t), &sdk.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		return awsCode(err)
	}
	expect := func(what, got, want string) {
		t.Helper()
		if !strings.HasPrefix(got, want) {
			t.Errorf("%s: got %q, want %s…", what, got, want)
		}
	}
	policy := `{"Version":"2012-10-17","Statement":[
	 {"Sid":"NoWriter","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/writer"},"Action":["kinesis:PutRecord*"],"Resource":"` + arn + `pol"},
	 {"Sid":"ReaderMayPut","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:user/reader","arn:aws:iam::000000000000:user/limited-writer"]},"Action":"kinesis:PutRecords","Resource":"` + arn + `*"},
	 {"Sid":"NobodyIterates","Effect":"Deny","Principal":"*","Action":"kinesis:Get*","Resource":"arn:aws:kinesis:*:*:stream/pol"}]}`
	if _, err := writer.PutResourcePolicy(tctx(t), &sdk.PutResourcePolicyInput{ResourceARN: aws.String(arn + "pol"), Policy: aws.String(policy)}); !strings.HasPrefix(awsCode(err), "AccessDeniedException") {
		t.Fatalf("a writer puts a policy: %v", awsCode(err))
	}
	if _, err := admin.PutResourcePolicy(tctx(t), &sdk.PutResourcePolicyInput{ResourceARN: aws.String(arn + "pol"), Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	denied := "AccessDeniedException: User: arn:aws:iam::000000000000:user/writer is not authorized to perform: kinesis:PutRecords on resource: " + arn + "pol with an explicit deny in a resource-based policy"
	expect("writer PutRecords to pol", put(writer, "pol"), denied)
	expect("writer PutRecord to pol", putOne(writer, "pol"), "AccessDeniedException")
	expect("writer-2 PutRecords to pol", put(writer2, "pol"), "ok")
	expect("writer PutRecords to free", put(writer, "free"), "ok")
	expect("reader PutRecords to pol (Allow)", put(reader, "pol"), "ok")
	expect("reader PutRecord to pol (not allowed)", putOne(reader, "pol"), "AccessDeniedException")
	expect("reader PutRecords to free (no policy)", put(reader, "free"), "AccessDeniedException")
	expect("limited writer PutRecords to pol (Allow)", put(lw, "pol"), "ok")
	expect("limited writer PutRecords to free", put(lw, "free"), "AccessDeniedException")
	expect("admin GetShardIterator on pol (Deny *)", iter(admin, "pol"), "AccessDeniedException")
	expect("reader GetShardIterator on free", iter(reader, "free"), "ok")

	// A consumer's policy governs the calls that name it by its ARN.
	reg, err := reader.RegisterStreamConsumer(tctx(t), &sdk.RegisterStreamConsumerInput{StreamARN: aws.String(arn + "free"), ConsumerName: aws.String("c")})
	if err != nil {
		t.Fatal(err)
	}
	cp := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:user/reader"},"Action":"kinesis:*","Resource":"` + *reg.Consumer.ConsumerARN + `"}}`
	if _, err := admin.PutResourcePolicy(tctx(t), &sdk.PutResourcePolicyInput{ResourceARN: reg.Consumer.ConsumerARN, Policy: aws.String(cp)}); err != nil {
		t.Fatal(err)
	}
	_, err = reader.DescribeStreamConsumer(tctx(t), &sdk.DescribeStreamConsumerInput{ConsumerARN: reg.Consumer.ConsumerARN})
	expect("reader describes the denied consumer", awsCode(err), "AccessDeniedException")
	_, err = admin.DescribeStreamConsumer(tctx(t), &sdk.DescribeStreamConsumerInput{ConsumerARN: reg.Consumer.ConsumerARN})
	expect("admin describes the consumer", awsCode(err), "ok")
	expect("reader GetShardIterator on free (consumer policy only)", iter(reader, "free"), "ok")

	// A policy Runnel cannot evaluate is refused with what is wrong.
	_, err = admin.PutResourcePolicy(tctx(t), &sdk.PutResourcePolicyInput{ResourceARN: aws.String(arn + "free"),
		Policy: aws.String(`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`)})
	expect("policy with a Condition", awsCode(err), "InvalidArgumentException: Policy Statement 1: Condition is not supported")

	if _, err := admin.DeleteResourcePolicy(tctx(t), &sdk.DeleteResourcePolicyInput{ResourceARN: aws.String(arn + "pol")}); err != nil {
		t.Fatal(err)
	}
	expect("writer PutRecords to pol after delete", put(writer, "pol"), "ok")
	expect("reader PutRecords to pol after delete", put(reader, "pol"), "AccessDeniedException")
	expect("admin GetShardIterator on pol after delete", iter(admin, "pol"), "ok")
}

// TestKinesisLimitedListStreams checks that ListStreams shows a token
// limited to streams only the names it may use, across pages.
func TestKinesisLimitedListStreams(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	admin := e.sdkFor("admin")
	for _, name := range []string{"a-1", "other-1", "b-1", "other-2", "other-3", "z-1"} {
		if _, err := admin.CreateStream(tctx(t), &sdk.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(c *sdk.Client) []string {
		var names []string
		p := sdk.NewListStreamsPaginator(c, &sdk.ListStreamsInput{Limit: aws.Int32(2)})
		for p.HasMorePages() {
			out, err := p.NextPage(tctx(t))
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, out.StreamNames...)
			for _, s := range out.StreamSummaries {
				if !slices.Contains(out.StreamNames, *s.StreamName) {
					t.Errorf("summary of %s not in StreamNames %v", *s.StreamName, out.StreamNames)
				}
			}
		}
		return names
	}
	if got, want := list(e.sdkFor("limited-reader")), []string{"other-1", "other-2", "other-3"}; !slices.Equal(got, want) {
		t.Errorf("limited reader lists %v, want %v", got, want)
	}
	if got := list(e.sdkFor("reader")); len(got) != 7 {
		t.Errorf("reader lists %v, want all 7 (with the job's \"s\")", got)
	}
}
