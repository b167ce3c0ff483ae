package kinesis

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/jobs"
)

// The channel tests on the served fixture: its channel ch reads stream f
// and delivers to an S3 endpoint that refuses connections, so its
// delivery job has failed; these tests are about what owns what.

// userJob is a job file a user might submit under a channel's job name.
// It reads the records as bytes: the fixture's streams hold records that
// are not JSON, which would fail the job while a test compares its state.
func userJob(name string) []byte {
	return []byte(`{"name":"` + name + `","source":{"stream":"g","format":"bytes"},"sinks":[{"id":"o","log":{}}]}`)
}

// describeCh returns the fixture channel's status and reason.
func describeCh(t *testing.T, fx *served, arn string) (string, string) {
	t.Helper()
	w := fx.call(t, "DescribeChannel", false, false, []byte(`{"ChannelARN":"`+arn+`"}`))
	var d channelOutput
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil || w.Code != http.StatusOK {
		t.Fatalf("DescribeChannel: %d %s", w.Code, w.Body.Bytes())
	}
	return d.ChannelDescription.ChannelStatus, d.ChannelDescription.ChannelStatusReason
}

// wantType checks an answer's status and exception type, and that its
// message has every one of words.
func wantType(t *testing.T, what string, w *httptest.ResponseRecorder, typ string, words ...string) {
	t.Helper()
	body := w.Body.Bytes()
	if got := w.Header().Get("X-Amzn-ErrorType"); w.Code != http.StatusBadRequest || got != typ {
		t.Fatalf("%s: %d %s %s, want %s", what, w.Code, got, body, typ)
	}
	for _, word := range words {
		if !strings.Contains(string(body), word) {
			t.Fatalf("%s: %s does not name %q", what, body, word)
		}
	}
}

// TestChannelJobIsTheChannels submits, deploys and deletes, as a user of
// the REST API would (POST /api/v1/jobs?replace=true, PUT, DELETE
// ?purge=true), the failed delivery job of an existing channel (its
// bucket unreachable: it waits to restart, the channel ACTIVE saying
// so): each is refused, before and after a restart of the server, and
// the channel keeps its own job.
func TestChannelJobIsTheChannels(t *testing.T) {
	servedEnv(t)
	fx := newServed(t, servedSetup{})
	defer fx.close()
	arn := fx.subst["$H"]
	for round := range 2 {
		if _, err := fx.mgr.SubmitWith(userJob("channel-ch"), jobs.SubmitOptions{Replace: true}); !errors.Is(err, jobs.ErrJobOwned) {
			t.Fatalf("round %d: a user's submit with replace over the channel's job: %v, want ErrJobOwned", round, err)
		}
		if _, err := fx.mgr.Deploy("channel-ch", userJob("channel-ch"), jobs.DeployNone); !errors.Is(err, jobs.ErrJobOwned) {
			t.Fatalf("round %d: a user's deploy over the channel's job: %v, want ErrJobOwned", round, err)
		}
		if err := fx.mgr.Delete("channel-ch"); !errors.Is(err, jobs.ErrJobOwned) {
			t.Fatalf("round %d: a user's delete of the channel's job: %v, want ErrJobOwned", round, err)
		}
		info, err := fx.mgr.Get("channel-ch")
		if err != nil || info.Owner != arn || !strings.Contains(info.Spec, "lake") {
			t.Fatalf("round %d: the channel's job is %+v, %v; want its own, owned by %s", round, info, err, arn)
		}
		var st, reason string
		if !testutil.Within(10*time.Second, func() bool {
			st, reason = describeCh(t, fx, arn)
			return st != "ACTIVE" || strings.Contains(reason, "delivery job channel-ch is failed") && strings.Contains(reason, "delivery is retried")
		}) || st != "ACTIVE" {
			t.Fatalf("round %d: DescribeChannel %s %q, want ACTIVE for the job's own reason, retried", round, st, reason)
		}
		fx.restart()
	}
}

// TestChannelNameTakenByJob: CreateChannel never replaces a job that is
// not a channel's; DeleteChannel deletes its delivery job, so a user's
// job may take the name, and CreateChannel then answers
// ResourceInUseException naming that job, which stays as it was.
func TestChannelNameTakenByJob(t *testing.T) {
	servedEnv(t)
	fx := newServed(t, servedSetup{})
	defer fx.close()
	// A stopped job of the user's, and a running one.
	if _, err := fx.mgr.Submit(userJob("channel-x")); err != nil {
		t.Fatal(err)
	}
	if err := fx.mgr.Stop("channel-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.mgr.Submit(userJob("channel-y")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"x", "y"} {
		before, _ := fx.mgr.Get("channel-" + name)
		w := fx.call(t, "CreateChannel", false, false, []byte(channelBody(name, "$G")))
		wantType(t, "CreateChannel "+name, w, excResourceInUse, "job channel-"+name)
		after, err := fx.mgr.Get("channel-" + name)
		if err != nil || after.Owner != "" || after.State != before.State || after.Spec != before.Spec || !after.Created.Equal(before.Created) {
			t.Fatalf("the user's job channel-%s after CreateChannel: %+v, %v; before %+v", name, after, err, before)
		}
		l := fx.call(t, "ListChannels", false, false, []byte(`{}`))
		if strings.Contains(l.Body.String(), `"`+name+`"`) {
			t.Fatalf("ListChannels after a refused CreateChannel %s: %s", name, l.Body.Bytes())
		}
	}

	if w := fx.call(t, "DeleteChannel", false, false, []byte(`{"ChannelARN":"$H"}`)); w.Code != http.StatusOK {
		t.Fatalf("DeleteChannel: %d %s", w.Code, w.Body.Bytes())
	}
	if _, err := fx.mgr.Get("channel-ch"); !errors.Is(err, jobs.ErrJobNotFound) {
		t.Fatalf("the delivery job after DeleteChannel: %v, want it deleted", err)
	}
	if _, err := fx.mgr.Submit(userJob("channel-ch")); err != nil {
		t.Fatalf("a user's job of a deleted channel's job name: %v", err)
	}
	w := fx.call(t, "CreateChannel", false, false, []byte(channelBody("ch", "$F")))
	wantType(t, "CreateChannel ch over the user's job", w, excResourceInUse, "job channel-ch")
	if info, err := fx.mgr.Get("channel-ch"); err != nil || info.Owner != "" || !strings.Contains(info.Spec, `"log"`) {
		t.Fatalf("the user's job channel-ch: %+v, %v", info, err)
	}
	// Once the user's job goes, the name is free.
	if err := fx.mgr.Stop("channel-ch"); err != nil {
		t.Fatal(err)
	}
	if err := fx.mgr.Delete("channel-ch"); err != nil {
		t.Fatal(err)
	}
	if w := fx.call(t, "CreateChannel", false, false, []byte(channelBody("ch", "$F"))); w.Code != http.StatusOK {
		t.Fatalf("CreateChannel once the name is free: %d %s", w.Code, w.Body.Bytes())
	}
}

// TestChannelLeftJobGoes: a delivery job of a channel's name without its
// channel (the server stopped between the two) goes when the channel is
// created again.
func TestChannelLeftJobGoes(t *testing.T) {
	servedEnv(t)
	fx := newServed(t, servedSetup{})
	defer fx.close()
	arn := fx.h.channelARN("z")
	if _, err := fx.mgr.SubmitWith(userJob("channel-z"), jobs.SubmitOptions{Owner: arn}); err != nil {
		t.Fatal(err)
	}
	w := fx.call(t, "CreateChannel", false, false, []byte(channelBody("z", "$G")))
	if w.Code != http.StatusOK {
		t.Fatalf("CreateChannel z over its left job: %d %s", w.Code, w.Body.Bytes())
	}
	if info, err := fx.mgr.Get("channel-z"); err != nil || info.Owner != arn || !strings.Contains(info.Spec, "lake") {
		t.Fatalf("channel z's job: %+v, %v", info, err)
	}
}

// TestDeleteStreamWithChannels: as on AWS, a stream is not deleted while
// channels read it, EnforceConsumerDeletion or not; once they are
// deleted, it is.
func TestDeleteStreamWithChannels(t *testing.T) {
	servedEnv(t)
	fx := newServed(t, servedSetup{})
	defer fx.close()
	if w := fx.call(t, "CreateChannel", false, false, []byte(channelBody("ch2", "$F"))); w.Code != http.StatusOK {
		t.Fatalf("CreateChannel ch2: %d %s", w.Code, w.Body.Bytes())
	}
	// Without EnforceConsumerDeletion f's consumer is refusal enough.
	w := fx.call(t, "DeleteStream", false, false, []byte(`{"StreamName":"f"}`))
	wantType(t, "DeleteStream", w, excResourceInUse)
	w = fx.call(t, "DeleteStream", false, false, []byte(`{"StreamARN":"$F","EnforceConsumerDeletion":true}`))
	wantType(t, "DeleteStream with EnforceConsumerDeletion", w, excResourceInUse, "Stream f", "channels (ch, ch2)")
	if _, err := fx.store.DescribeStream("f"); err != nil {
		t.Fatalf("stream f after a refused DeleteStream: %v", err)
	}
	for _, ch := range []string{"ch", "ch2"} {
		if w := fx.call(t, "DeleteChannel", false, false, []byte(`{"ChannelARN":"`+fx.h.channelARN(ch)+`"}`)); w.Code != http.StatusOK {
			t.Fatalf("DeleteChannel %s: %d %s", ch, w.Code, w.Body.Bytes())
		}
	}
	if w := fx.call(t, "DeleteStream", false, false, []byte(`{"StreamARN":"$F","EnforceConsumerDeletion":true}`)); w.Code != http.StatusOK {
		t.Fatalf("DeleteStream once its channels are deleted: %d %s", w.Code, w.Body.Bytes())
	}
}

// TestChannelStreamDeletedElsewhere deletes a channel's stream around the
// Kinesis API (as the REST API does) and creates a stream of its name
// again: the channel is FAILED naming the deleted stream, an update does
// not start it on the new stream, and the new stream is not held by it.
func TestChannelStreamDeletedElsewhere(t *testing.T) {
	servedEnv(t)
	fx := newServed(t, servedSetup{})
	defer fx.close()
	arn := fx.subst["$H"]
	old, err := fx.store.DescribeStream("f")
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.store.DeleteStream("f"); err != nil {
		t.Fatal(err)
	}
	if st, reason := describeCh(t, fx, arn); st != "FAILED" || !strings.Contains(reason, "stream f (created "+old.Created.Format(time.RFC3339Nano)+") was deleted") {
		t.Fatalf("DescribeChannel after its stream's deletion: %s %q", st, reason)
	}
	fx.clock.Advance(time.Minute)
	fx.must("CreateStream", `{"StreamName":"f","ShardCount":1}`)
	fx.settle()
	for round := range 2 {
		st, reason := describeCh(t, fx, arn)
		if st != "FAILED" || !strings.Contains(reason, "stream f (created "+old.Created.Format(time.RFC3339Nano)+") was deleted") || !strings.Contains(reason, "now was created") {
			t.Fatalf("round %d: DescribeChannel with a new stream f: %s %q", round, st, reason)
		}
		w := fx.call(t, "UpdateChannel", false, false, []byte(`{"ChannelARN":"$H","S3DestinationConfiguration":{"DataFreshnessInSeconds":30}}`))
		wantType(t, "UpdateChannel on a deleted stream", w, excResourceInUse, "stream f", "was deleted")
		if info, err := fx.mgr.Get("channel-ch"); err != nil || info.State == "running" {
			t.Fatalf("round %d: the delivery job of a deleted stream: %+v, %v", round, info, err)
		}
		fx.restart()
	}
	// The channel shows the stream it read; the new stream is free.
	w := fx.call(t, "DescribeChannel", false, false, []byte(`{"ChannelARN":"$H"}`))
	var d channelOutput
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil || !d.ChannelDescription.StreamConfigurationList[0].StreamCreationTimestamp.Time.Equal(old.Created) {
		t.Fatalf("DescribeChannel: %s", w.Body.Bytes())
	}
	if w := fx.call(t, "DeleteStream", false, false, []byte(`{"StreamName":"f","EnforceConsumerDeletion":true}`)); w.Code != http.StatusOK {
		t.Fatalf("DeleteStream of the new f: %d %s", w.Code, w.Body.Bytes())
	}
	if w := fx.call(t, "DeleteChannel", false, false, []byte(`{"ChannelARN":"$H"}`)); w.Code != http.StatusOK {
		t.Fatalf("DeleteChannel: %d %s", w.Code, w.Body.Bytes())
	}
}
