// Package sources owns where a job's records come from: a Runnel stream
// (stream.go), bounded files of JSON lines or CSV (file.go), the built-in
// clickstream generator (generator.go) and an in-memory source for tests and
// benchmarks (memory.go).
//
// A Source is split into shards. The runtime runs one task per shard and
// reads it through a Reader in batches; a shard created by a split or merge
// (resharding) lists its parents, and the runtime opens it only after every
// parent's Reader has returned io.EOF, so records of one partition key stay
// in order across a reshard.
//
// Positions are explicit: every Record carries the Position it was read at
// (a stream sequence number, a file line, a generator index) and Open takes
// the position to resume after. Checkpoints store shard → last
// position processed and pass it back to Open on restore.
//
// Records are decoded here (format json, text or bytes), in the shard's own
// task, so decoding scales with shards. DecodeJSON is a small JSON decoder
// into the value shapes of operators.Record (map[string]any, []any, string,
// float64, bool, nil) that avoids encoding/json's reflection on the hot path;
// it is fuzzed against encoding/json. A stream source read only by JS
// chains is built with StreamConfig.RawJSON and hands the bytes on
// undecoded instead: the chain decodes just the fields its functions read
// (operators/js).
//
// A record that does not decode (or, as JSON, nests deeper than
// MaxJSONDepth) fails the job with a *RecordError, unless the source's
// BadRecords policy drops it (skip, or a dead letter appended to a stream:
// policy.go). Format bytes yields Bytes, which JS sees as byte values.
//
// A stream reader asks the store for up to 4096 records per read and
// serves the runtime's smaller batches from them: a store read costs about
// the same for a few records as for thousands (it reads a chunk of the
// segment either way).
package sources
