// Package codec decodes the record bytes of the Kafka and Kinesis sources
// into the values a job's operators see: json (the default), text, bytes,
// csv, avro and protobuf, with the Avro or Protobuf schema given in the
// job file or fetched from a Confluent-compatible schema registry.
//
// Values are what the JSON decoder makes (map[string]any, []any, string,
// float64, bool, nil) so that operators need not care about the format;
// bytes become sources.Bytes, Avro timestamps epoch milliseconds.
//
// Avro uses github.com/hamba/avro/v2: maintained, pure Go, fast, and it
// decodes into generic maps without generated code, which a job file's
// schema needs. Protobuf uses google.golang.org/protobuf's protodesc and
// dynamicpb with a FileDescriptorSet (what `protoc --include_imports
// --descriptor_set_out` or `buf build -o` write), because parsing .proto
// text needs a compiler the module does not have; a registry's Protobuf
// schemas are fetched in their serialized (descriptor) form for the same
// reason.
//
// With a registry, records are in the Confluent wire format: a zero byte,
// the 4-byte big-endian schema id, for Protobuf the message indexes, then
// the payload. Schemas are fetched by id once and cached.
package codec
