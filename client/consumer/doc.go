// Package consumer is a consumer-group worker in the manner of the Kinesis
// Client Library: workers of one group share a stream's shards through
// leases, hand each shard's records to a handler in order, and checkpoint
// after the handler returns.
//
// Guarantee: every user record is handed to a handler at least once, and
// the records of one shard are handed in order; a child shard is read only
// after its parents were read to their end, so the records of a partition
// key are handed in the order they were put, across splits and merges. A
// record is handed again only when its batch was not checkpointed: its
// worker died or lost the lease before the checkpoint, or the handler
// failed it.
//
// Assumptions: the lease store runs the protocol of package
// consumergroups, and a worker's clock runs at the rate of the store's (a
// worker stops handing batches once a lease duration has passed since its
// last successful Sync, so a worker cut off from the store stops before
// its leases can be taken over). Two live workers never share a name.
//
// Leases live on a Runnel server (ServerLeases, the consumer-groups API)
// or, for any Kinesis endpoint, in PostgreSQL (PostgresLeases). Records
// are read through the Kinesis API in both cases. KPL aggregated records
// are unpacked with package streams/kpl.
//
// Files: consumer.go (Group, Handler, Record), worker.go (the lease loop),
// shard.go (reading a shard), readerr.go (what a reader says when its
// reads fail, and ReadError), records.go (de-aggregation), serverstore.go
// and pgstore.go (the two lease stores), metrics.go.
package consumer
