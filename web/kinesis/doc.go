// Package kinesis serves the Amazon Kinesis Data Streams wire API over a
// streams.Store: `POST /` requests carrying `X-Amz-Target:
// Kinesis_20131202.<Operation>`, with bodies in JSON 1.1 (the Go, JS and
// Python SDKs, the AWS CLI, Terraform) or CBOR 1.1 (the Java SDK, KCL, KPL).
//
// It owns what the log does not: the API's request and response shapes and
// both codecs, AWS's error names and validation messages, shard iterators
// and paging tokens, stream modes, encryption and monitoring settings (kept
// as stream attributes), enhanced fan-out consumers and SubscribeToShard's
// event stream, optional per-shard throughput limits, and the ingest
// benchmark that the CLI runs.
package kinesis
