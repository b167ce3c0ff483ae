package kafka

// What `runnel worker` (package cluster) needs of a built source: it reads
// the topics itself, in its consumer group and transactions, but decodes
// records as the source would.

// Config returns the source's configuration.
func (s *Source) Config() Config { return s.cfg }

// NewRecordDecoder makes a decoder of record values like the one each of
// the source's readers uses.
func (s *Source) NewRecordDecoder() Decoder { return s.newDecoder() }
