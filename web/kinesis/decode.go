package kinesis

import (
	"encoding/base64"
	"errors"
)

// DecodePutRecords decodes a JSON PutRecords body as the handler does (the
// fast path, else encoding/json), record data included, and returns how
// many records it holds. It keeps nothing: benchmark harnesses use it to
// serve a decode-and-discard server that does the handler's decoding and
// nothing more.
func DecodePutRecords(body []byte) (int, error) {
	var in putRecordsInput
	sc := getScratch()
	defer putScratchBack(sc)
	slab := getBuf(base64.StdEncoding.DecodedLen(len(body)))
	defer func() { putBuf(slab) }()
	if !parsePutRecordsJSONScratch(body, &in, &slab, sc) {
		in = putRecordsInput{}
		if err := decode(codecJSON, body, &in); err != nil {
			return 0, err
		}
	}
	return len(in.Records), nil
}

// DecodePutRecord is DecodePutRecords for a single PutRecord body.
func DecodePutRecord(body []byte) error {
	var in putRecordInput
	if !parsePutRecordJSON(body, &in) {
		in = putRecordInput{}
		if err := decode(codecJSON, body, &in); err != nil {
			return err
		}
	}
	if in.Data == nil {
		return errors.New("PutRecord body without Data")
	}
	return nil
}
