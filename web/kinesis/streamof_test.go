package kinesis

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// StreamOf names the one stream a body addresses, whichever member names
// it, and nothing when the members disagree or an iterator is not one.
func TestStreamOf(t *testing.T) {
	h, _ := storeHandler(t, Options{CreateDelay: -1}, "bench", 4)
	it := h.encodeIterator(iterator{issued: time.Now(), shard: 1, counter: 7, stream: "clicks"})
	arn := "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks"
	for _, c := range []struct {
		body map[string]any
		want string // "" for not ok
	}{
		{map[string]any{"StreamName": "clicks"}, "clicks"},
		{map[string]any{"StreamARN": arn}, "clicks"},
		{map[string]any{"ResourceARN": arn}, "clicks"},
		{map[string]any{"ConsumerARN": arn + "/consumer/app:1700000000"}, "clicks"},
		{map[string]any{"StreamName": "clicks", "StreamARN": arn}, "clicks"},
		{map[string]any{"ShardIterator": it}, "clicks"},
		{map[string]any{"StreamName": "views", "StreamARN": arn}, ""},
		{map[string]any{"StreamName": "views", "ShardIterator": it}, ""},
		{map[string]any{"StreamARN": "arn:aws:s3:::bucket"}, ""},
		{map[string]any{"ShardIterator": "AAAA"}, ""},
		{map[string]any{"Limit": 10}, ""},
	} {
		j, _ := json.Marshal(c.body)
		b, _ := cbor.Marshal(c.body)
		for _, in := range []struct {
			ct   string
			body []byte
		}{{contentJSON, j}, {contentCBOR, b}} {
			got, ok := StreamOf(in.ct, in.body)
			if want := c.want != ""; ok != want || got != c.want {
				t.Errorf("%s %s: %q %v, want %q", in.ct, j, got, ok, c.want)
			}
		}
	}
}
