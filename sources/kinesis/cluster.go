package kinesis

import "github.com/aws/aws-sdk-go-v2/service/kinesis"

// What `runnel worker` (package cluster) needs of a built source: it reads
// the shards itself, under leases and in its transactions, but through the
// source's client and decoding records as the source would.

// Config returns the source's configuration (with its defaults).
func (s *Source) Config() Config { return s.cfg }

// Client returns the source's Kinesis client.
func (s *Source) Client() *kinesis.Client { return s.api }

// NewRecordDecoder makes a decoder of record data like the one each of the
// source's readers uses.
func (s *Source) NewRecordDecoder() Decoder { return s.cfg.NewDecoder() }
