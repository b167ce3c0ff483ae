package producer

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// ownBody gives a PutRecords call's request a body of its own for
// net/http to send, so that the SDK cannot pull it away mid-write.
//
// The SDK closes a request's body as soon as the answer's headers are in.
// net/http's write loop, though, may still be writing that body then: a
// server reads a whole body and answers before the loop, descheduled on a
// busy machine, has read past the body's end to check its length. The
// loop then finds the body closed, fails the request and closes the
// connection under the answer being read ("use of closed network
// connection"). The call fails as a whole although the stream wrote its
// records, and sending them again puts them in the stream twice. With a
// body the SDK never closes, the write ends as it began.
func ownBody(o *kinesis.Options) {
	if o.HTTPClient != nil {
		o.HTTPClient = ownBodyClient{o.HTTPClient}
	}
}

type ownBodyClient struct{ next kinesis.HTTPClient }

func (c ownBodyClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, max(r.ContentLength, 0)))
	_, err := io.Copy(buf, r.Body)
	r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("producer: read the request body: %w", err)
	}
	b := buf.Bytes()
	own := *r
	own.Body = io.NopCloser(bytes.NewReader(b))
	own.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	own.ContentLength = int64(len(b))
	return c.next.Do(&own)
}
