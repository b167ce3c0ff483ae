package kinesis

import (
	"encoding/base64"
	"encoding/json"
	"mime"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// StreamOf names the stream a Kinesis request body addresses, by
// StreamName, StreamARN, ResourceARN, ConsumerARN or (GetRecords)
// ShardIterator, for a front end that checks a caller's stream grants
// before the handler runs. It takes ARNs of any region and account and
// reads an iterator without checking its MAC: the handler checks both, so
// a forged one gets no further than the grant lets it. ok is false when
// the body names no stream, or different ones.
func StreamOf(contentType string, body []byte) (string, bool) {
	var t policyTargets
	var err error
	if mt, _, _ := mime.ParseMediaType(contentType); mt == contentCBOR {
		err = cbor.Unmarshal(body, &t)
	} else {
		err = json.Unmarshal(body, &t)
	}
	if err != nil {
		return "", false
	}
	var names []string
	if t.StreamName != nil {
		names = append(names, *t.StreamName)
	}
	for _, arn := range []*string{t.StreamARN, t.ResourceARN, t.ConsumerARN} {
		if arn != nil {
			n, ok := arnStream(*arn)
			if !ok {
				return "", false
			}
			names = append(names, n)
		}
	}
	if t.ShardIterator != nil {
		b, err := base64.StdEncoding.DecodeString(*t.ShardIterator)
		if err != nil || len(b) < iteratorHead+1+macLen || b[0] != tokIterator {
			return "", false
		}
		names = append(names, string(b[iteratorHead:len(b)-macLen]))
	}
	if len(names) == 0 {
		return "", false
	}
	for _, n := range names[1:] {
		if n != names[0] {
			return "", false
		}
	}
	return names[0], true
}

// arnStream is the stream of a stream or consumer ARN of any region and
// account (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME[/consumer/...]).
func arnStream(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[2] != "kinesis" {
		return "", false
	}
	rest, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return name, name != ""
}
