package kinesis

import (
	"errors"

	"github.com/runnel-dev/runnel/streams"
)

// Per-record failures of PutRecords. The log stores a put shard by shard
// (streams/putpartial.go): when the records of some shards were stored and
// those of others were not, PutRecords answers 200 with each record's
// result, as AWS does, so that clients (the SDKs' retry helpers, the KPL,
// Runnel's producer) send again only the records with an ErrorCode. A put
// that stored nothing keeps the error of the whole request.

// recordFailure is the ErrorCode and ErrorMessage of a record the log did
// not store: ProvisionedThroughputExceededException when sending it again
// later can succeed as it is (the disk is full, or the server has no file
// descriptors left), InternalFailure
// otherwise. The message names the shard, not the server's files.
func (h *Handler) recordFailure(name string, r *streams.PutResult) *apiError {
	switch {
	case streams.OutOfFiles(r.Err):
		return newErr(excThroughputExceeded, "Rate exceeded for shard %s in stream %s under account %s: the server has no file descriptors left (its open-file limit); send the record again later.", r.ShardID, name, h.opts.AccountID)
	case errors.Is(r.Err, streams.ErrUnavailable):
		return newErr(excThroughputExceeded, "Rate exceeded for shard %s in stream %s under account %s: the server's disk is full; send the record again once space is freed.", r.ShardID, name, h.opts.AccountID)
	case errors.Is(r.Err, streams.ErrMaybeStored):
		return newErr(excInternalFailure, "Internal service failure: shard %s of stream %s failed to write; the record may have been stored, and sending it again may store it twice.", r.ShardID, name)
	case errors.Is(r.Err, streams.ErrClosed):
		return newErr(excInternalFailure, "Internal service failure: the server is shutting down; shard %s of stream %s did not store the record.", r.ShardID, name)
	}
	return newErr(excInternalFailure, "Internal service failure: shard %s of stream %s did not store the record (it failed to write).", r.ShardID, name)
}

// partialPut returns how many records were not stored when err is a put
// that stored some records and not others, to be answered record by
// record; else 0.
func partialPut(err error) int {
	var pe *streams.PartialPutError
	if errors.As(err, &pe) {
		return pe.Failed
	}
	return 0
}
