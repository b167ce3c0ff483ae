// Package scale drives a real `runnel serve` to its limits at once: streams
// and open shards up to --max-streams and --max-shards and past them, puts
// and reads of every shard with fewer open-file descriptors than the shards
// would need, connections past the process's open-file limit, consumers and
// SubscribeToShard sessions on many shards, resharding at the shard limit,
// and a restart that must bring everything back. It holds only tests.
package scale
