package kinesis

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// TestChannelsAnswerWhileOneDeletes: a DeleteChannel whose delivery job
// cannot finish its last checkpoint (the S3 server paused) does not hold
// the other channel operations up. DescribeChannel says DELETING,
// ListChannels and another channel's DescribeChannel answer, an
// UpdateChannel or a second DeleteChannel of the deleting channel answers
// ResourceInUseException; once S3 answers the delete completes and every
// record was delivered once.
func TestChannelsAnswerWhileOneDeletes(t *testing.T) {
	e, gw, _ := deliveryEnv(t)
	e.create("views", 1)
	e.putN("clicks", 0, 10)
	a, err := e.createDelivery("a", "clicks")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.createDelivery("b", "views")
	if err != nil {
		t.Fatal(err)
	}
	arnA, arnB := a.ChannelDescription.ChannelARN, b.ChannelDescription.ChannelARN
	waitDelivered(t, gw, 10)
	e.putN("clicks", 10, 15)
	gw.Signal(syscall.SIGSTOP)
	paused := true
	defer func() {
		if paused {
			gw.Signal(syscall.SIGCONT)
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := e.client.DeleteChannel(context.Background(), &sdk.DeleteChannelInput{ChannelARN: arnA})
		done <- err
	}()

	// Each call is bounded: before, they waited for the delete, which
	// waits for S3.
	call := func(what string, fn func(context.Context) error) error {
		t.Helper()
		c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		err := fn(c)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s did not answer within 15 s while another channel's DeleteChannel waits for S3", what)
		}
		return err
	}
	describe := func(arn *string) types.ChannelStatus {
		var st types.ChannelStatus
		if err := call("DescribeChannel", func(c context.Context) error {
			d, err := e.client.DescribeChannel(c, &sdk.DescribeChannelInput{ChannelARN: arn})
			if err == nil {
				st = d.ChannelDescription.ChannelStatus
			}
			return err
		}); err != nil {
			t.Fatalf("DescribeChannel %s: %v", aws.ToString(arn), err)
		}
		return st
	}
	for deadline := time.Now().Add(30 * time.Second); describe(arnA) != types.ChannelStatusDeleting; time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("DeleteChannel returned (%v) while S3 was paused, before DescribeChannel saw DELETING", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel a is %s, not DELETING, during its DeleteChannel", describe(arnA))
		}
	}
	if st := describe(arnB); st == types.ChannelStatusDeleting {
		t.Fatalf("channel b is %s while a deletes", st)
	}
	var listed []string
	if err := call("ListChannels", func(c context.Context) error {
		out, err := e.client.ListChannels(c, &sdk.ListChannelsInput{})
		if err != nil {
			return err
		}
		for _, s := range out.ChannelSummaries {
			listed = append(listed, aws.ToString(s.ChannelName)+"="+string(s.ChannelStatus))
		}
		return nil
	}); err != nil || len(listed) != 2 || listed[0] != "a=DELETING" {
		t.Fatalf("ListChannels during a's delete: %v, %v; want a=DELETING and b", listed, err)
	}
	var inUse *types.ResourceInUseException
	if err := call("UpdateChannel", func(c context.Context) error {
		_, err := e.client.UpdateChannel(c, &sdk.UpdateChannelInput{ChannelARN: arnA,
			S3DestinationConfiguration: &types.S3DestinationUpdateInput{DataFreshnessInSeconds: aws.Int32(2)}})
		return err
	}); !errors.As(err, &inUse) {
		t.Fatalf("UpdateChannel of a deleting channel: %v, want ResourceInUseException", err)
	}
	if err := call("DeleteChannel", func(c context.Context) error {
		_, err := e.client.DeleteChannel(c, &sdk.DeleteChannelInput{ChannelARN: arnA})
		return err
	}); !errors.As(err, &inUse) {
		t.Fatalf("a second DeleteChannel of a deleting channel: %v, want ResourceInUseException", err)
	}

	gw.Signal(syscall.SIGCONT)
	paused = false
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("DeleteChannel after S3 resumed: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("DeleteChannel did not return within 3 minutes of S3 resuming")
	}
	var nf *types.ResourceNotFoundException
	if _, err := e.client.DescribeChannel(ctx(t), &sdk.DescribeChannelInput{ChannelARN: arnA}); !errors.As(err, &nf) {
		t.Fatalf("DescribeChannel after the delete: %v, want ResourceNotFoundException", err)
	}
	if got := delivered(t, gw); fmt.Sprint(got) != fmt.Sprint(seq(0, 15)) {
		t.Fatalf("delivered %v, want %v once each", got, seq(0, 15))
	}
}
