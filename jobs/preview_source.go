package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync/atomic"

	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/streams"
)

// The sources of a preview: the last N records of a stream, read once
// into memory, or the first N records of any other source.

// streamSample reads the last n records of a stream, over all its shards
// by arrival time (shard order within a shard kept), and the stream's
// sequence tag, which the records' positions carry.
func streamSample(st *streams.Store, name string, n int) (map[string][]streams.Record, []string, uint64, error) {
	info, err := st.DescribeStream(name)
	if err != nil {
		return nil, nil, 0, err
	}
	type rec struct {
		shard string
		r     streams.Record
	}
	var all []rec
	for _, sh := range info.Shards {
		if sh.LastSeq == 0 || sh.LastSeq < sh.TrimSeq {
			continue
		}
		from := sh.TrimSeq
		if sh.LastSeq >= uint64(n) && sh.LastSeq-uint64(n)+1 > from {
			from = sh.LastSeq - uint64(n) + 1
		}
		for from <= sh.LastSeq {
			rr, err := st.Read(name, sh.ID, from, 0, 0)
			if err != nil {
				return nil, nil, 0, err
			}
			if rr.Tag != info.SeqTag {
				// Deleted and created again since the description.
				return nil, nil, 0, fmt.Errorf("stream %s was deleted and created again while sampled", name)
			}
			for _, r := range rr.Records {
				if r.Seq <= sh.LastSeq {
					all = append(all, rec{sh.ID, r})
				}
			}
			if len(rr.Records) == 0 || rr.Next <= from {
				break
			}
			from = rr.Next
		}
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].r.Arrival < all[b].r.Arrival })
	if len(all) > n {
		all = all[len(all)-n:]
	}
	out := map[string][]streams.Record{}
	var ids []string
	for _, r := range all {
		if _, ok := out[r.shard]; !ok {
			ids = append(ids, r.shard)
		}
		out[r.shard] = append(out[r.shard], r.r)
	}
	for _, id := range ids {
		recs := out[id]
		sort.Slice(recs, func(a, b int) bool { return recs[a].Seq < recs[b].Seq })
	}
	sort.Strings(ids)
	return out, ids, info.SeqTag, nil
}

// sampleSource is a bounded source over a stream sample: records that do
// not decode are preview errors of the source, and are left out.
type sampleSource struct {
	run    *previewRun
	format sources.Format
	shards map[string][]streams.Record
	ids    []string
	tag    uint64 // the stream's sequence tag
}

func (s *sampleSource) Bounded() bool { return true }

func (s *sampleSource) Shards(context.Context) ([]sources.Shard, error) {
	out := make([]sources.Shard, len(s.ids))
	for i, id := range s.ids {
		out[i] = sources.Shard{ID: id}
	}
	return out, nil
}

func (s *sampleSource) Open(_ context.Context, sh sources.Shard, after string) (sources.Reader, error) {
	recs, ok := s.shards[sh.ID]
	if !ok {
		return nil, fmt.Errorf("preview: no shard %s", sh.ID)
	}
	dec := sources.NewDecoder(s.format)
	dec.SetMaxDepth(sources.MaxJSONDepth)
	return &sampleReader{src: s, shard: sh.ID, recs: recs, dec: dec}, nil
}

type sampleReader struct {
	src   *sampleSource
	shard string
	recs  []streams.Record
	dec   *sources.Decoder
}

func (r *sampleReader) Read(ctx context.Context, buf []sources.Record) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(buf) && len(r.recs) > 0 {
		rec := r.recs[0]
		r.recs = r.recs[1:]
		idx, _ := streams.ParseShardID(r.shard)
		pos := streams.FormatSeq(r.src.tag, idx, rec.Seq)
		v, err := r.dec.Decode(rec.Data)
		if err != nil {
			r.src.run.addError(SourceID, SourceID+"/"+r.shard+"@"+pos, rec.Data, err.Error())
			continue
		}
		buf[n] = sources.Record{Value: v, PartitionKey: rec.PartitionKey, Position: pos, Arrival: rec.Arrival}
		n++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *sampleReader) Children() []sources.Shard { return nil }
func (r *sampleReader) Close() error              { return nil }

// firstN passes on the first n records of a source over all its shards,
// then ends every shard.
type firstN struct {
	sources.Source
	left atomic.Int64
}

func limitSource(s sources.Source, n int) *firstN {
	f := &firstN{Source: s}
	f.left.Store(int64(n))
	return f
}

func (f *firstN) Bounded() bool { return true }

func (f *firstN) Open(ctx context.Context, sh sources.Shard, after string) (sources.Reader, error) {
	rd, err := f.Source.Open(ctx, sh, after)
	if err != nil {
		return nil, err
	}
	return &firstNReader{Reader: rd, f: f}, nil
}

type firstNReader struct {
	sources.Reader
	f   *firstN
	cut bool
}

func (r *firstNReader) Read(ctx context.Context, buf []sources.Record) (int, error) {
	if r.f.left.Load() <= 0 {
		r.cut = true
		return 0, io.EOF
	}
	n, err := r.Reader.Read(ctx, buf)
	if n > 0 {
		left := r.f.left.Add(-int64(n))
		if left < 0 {
			n = max(0, n+int(left))
		}
		if n == 0 {
			r.cut = true
			return 0, io.EOF
		}
	}
	return n, err
}

func (r *firstNReader) Children() []sources.Shard {
	if r.cut {
		return nil
	}
	return r.Reader.Children()
}

// previewSource makes the source of a preview.
func (b *builder) previewSource(k *sourceKind, s *Source) (sources.Source, error) {
	p := b.env.preview
	if name := s.stream(); name != "" && k.Name == SourceStream {
		if b.env.Store == nil {
			return nil, fmt.Errorf("job %s: source.stream needs a server", b.spec.Name)
		}
		shards, ids, tag, err := streamSample(b.env.Store, name, p.records)
		switch {
		case errors.Is(err, streams.ErrStreamNotFound):
			p.warnings = append(p.warnings, fmt.Sprintf("stream %s does not exist yet: the preview read no records", name))
		case err != nil:
			return nil, fmt.Errorf("job %s: read the last %d records of stream %s: %w", b.spec.Name, p.records, name, err)
		case len(ids) == 0:
			p.warnings = append(p.warnings, fmt.Sprintf("stream %s has no records: the preview read none", name))
		}
		format := sources.Format(s.Format)
		if format == "" {
			format = sources.FormatJSON
		}
		return &sampleSource{run: p, format: format, shards: shards, ids: ids, tag: tag}, nil
	}
	src, err := k.Build(b, s)
	if err != nil {
		return nil, err
	}
	return limitSource(src, p.records), nil
}
