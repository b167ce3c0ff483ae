// Package kpl reads the Kinesis Producer Library's aggregated record
// format: many user records packed into the data of one Kinesis record.
//
// An aggregated record is the 4 magic bytes F3 89 9A C2, a protobuf
// AggregatedRecord, then the 16-byte MD5 of the protobuf bytes:
//
//	AggregatedRecord { repeated string partition_key_table = 1;
//	                   repeated string explicit_hash_key_table = 2;
//	                   repeated Record records = 3; }
//	Record { required uint64 partition_key_index = 1;
//	         optional uint64 explicit_hash_key_index = 2;
//	         required bytes data = 3; repeated Tag tags = 4; }
//	Tag { required string key = 1; optional string value = 2; }
//
// Data that lacks the magic, is too short, or whose MD5 does not match is
// an ordinary record, as the KCL treats it: producers other than the KPL
// may write anything, including bytes that start like the magic. The
// n-th user record of an aggregated record has sub-sequence number n.
//
// A consumer of one shard keeps only the user records whose hash key (the
// explicit hash key when set, else the MD5 of the partition key) lies in
// the shard's hash-key range: the KPL aggregates by the shard a producer
// believed in, and after a reshard some user records belong elsewhere.
package kpl
