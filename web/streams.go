package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/runnel-dev/runnel/internal/apitime"
	"github.com/runnel-dev/runnel/internal/units"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/web/kinesis"
)

// REST API for streams: /api/v1/streams. JSON in and out; the shapes are
// documented in docs/api.md.

const (
	smallBody   = 1 << 20  // control requests
	recordsBody = 12 << 20 // PutRecords: 500 records, base64 inflates data by 4/3
	maxPutBatch = 500
)

type shardJSON struct {
	ID                     string   `json:"id"`
	HashKeyStart           string   `json:"hash_key_start"`
	HashKeyEnd             string   `json:"hash_key_end"`
	Parent                 string   `json:"parent,omitempty"`
	AdjacentParent         string   `json:"adjacent_parent,omitempty"`
	Children               []string `json:"children,omitempty"`
	Open                   bool     `json:"open"`
	StartingSequenceNumber string   `json:"starting_sequence_number"`
	EndingSequenceNumber   string   `json:"ending_sequence_number,omitempty"`
	TrimPosition           uint64   `json:"trim_position"`
	LastPosition           uint64   `json:"last_position"`
	Created                string   `json:"created"`
	// LostRecords lists acknowledged records found missing at a start;
	// DiskFull says the shard refuses writes now for want of space.
	LostRecords []lostJSON `json:"lost_records,omitempty"`
	DiskFull    bool       `json:"disk_full,omitempty"`
}

type streamJSON struct {
	Name           string `json:"name"`
	Status         string `json:"status"`
	Created        string `json:"created"`
	RetentionHours int    `json:"retention_hours"`
	OpenShards     int    `json:"open_shards"`
	// Records counts the records kept (trim horizon to tip, over the
	// shards); Bytes the bytes the shards keep on disk (their segment
	// files), BytesIn the record bytes appended since the server started.
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
	Size    string `json:"size"`
	BytesIn int64  `json:"bytes_in"`
	// Readers are the jobs whose source is the stream (stream lists).
	Readers []string          `json:"readers"`
	Tags    map[string]string `json:"tags,omitempty"`
	Shards  []shardJSON       `json:"shards,omitempty"`
}

// lostJSON is a streams.LostRange with its time in apitime.Layout.
type lostJSON struct {
	streams.LostRange
	Found apitime.Time `json:"found"`
}

func lostJSONs(in []streams.LostRange) []lostJSON {
	if in == nil {
		return nil
	}
	out := make([]lostJSON, len(in))
	for i, l := range in {
		out[i] = lostJSON{l, apitime.Time(l.Found)}
	}
	return out
}

func toStreamJSON(in streams.StreamInfo, withShards bool) streamJSON {
	out := streamJSON{Name: in.Name, Status: in.Status, Created: apitime.Format(in.Created),
		RetentionHours: in.RetentionHours, Tags: in.Tags}
	for _, s := range in.Shards {
		if s.Open {
			out.OpenShards++
		}
		if s.LastSeq > 0 && s.LastSeq >= s.TrimSeq {
			out.Records += int64(s.LastSeq - s.TrimSeq + 1)
		}
		out.Bytes += s.DiskBytes
		out.BytesIn += s.BytesIn
		if !withShards {
			continue
		}
		out.Shards = append(out.Shards, shardJSON{
			ID: s.ID, HashKeyStart: s.Range.Start.String(), HashKeyEnd: s.Range.End.String(),
			Parent: s.Parent, AdjacentParent: s.AdjacentParent, Children: s.Children, Open: s.Open,
			StartingSequenceNumber: s.StartingSequenceNumber(), EndingSequenceNumber: s.EndingSequenceNumber(),
			TrimPosition: s.TrimSeq, LastPosition: s.LastSeq, Created: apitime.Format(s.Created),
			LostRecords: lostJSONs(s.Lost), DiskFull: s.DiskFull,
		})
	}
	out.Size = units.Bytes(out.Bytes)
	return out
}

func (s *Server) routeStreams(mux *routeMux) {
	mux.HandleFunc("POST /api/v1/streams", s.createStream)
	mux.HandleFunc("GET /api/v1/streams", s.listStreams)
	mux.HandleFunc("GET /api/v1/streams/{name}", s.describeStream)
	mux.HandleFunc("DELETE /api/v1/streams/{name}", s.deleteStream)
	mux.HandleFunc("POST /api/v1/streams/{name}/split", s.splitShard)
	mux.HandleFunc("POST /api/v1/streams/{name}/merge", s.mergeShards)
	mux.HandleFunc("POST /api/v1/streams/{name}/shard-count", s.updateShardCount)
	mux.HandleFunc("POST /api/v1/streams/{name}/records", s.putRecords)
	mux.HandleFunc("GET /api/v1/streams/{name}/records", s.getRecords)
}

type createStreamReq struct {
	Name           string            `json:"name"`
	Shards         *int              `json:"shards"`
	RetentionHours int               `json:"retention_hours"`
	Tags           map[string]string `json:"tags"`
}

func (s *Server) createStream(w http.ResponseWriter, r *http.Request) {
	var req createStreamReq
	if err := decodeBody(w, r, smallBody, &req); err != nil {
		writeError(w, err)
		return
	}
	shards := 1
	if req.Shards != nil {
		shards = *req.Shards
	}
	info, err := s.store.CreateStream(req.Name, shards, streams.CreateOptions{RetentionHours: req.RetentionHours, Tags: req.Tags})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, toStreamJSON(info, true))
}

func (s *Server) listStreams(w http.ResponseWriter, r *http.Request) {
	out := []streamJSON{}
	p := PrincipalFrom(r.Context())
	readers := s.streamReaders()
	for _, in := range s.store.ListStreams() {
		if p.CanStream(in.Name) { // a token limited to streams sees only those
			sj := toStreamJSON(in, false)
			sj.Readers = []string{}
			for _, id := range readers[in.Name] {
				if ok, _ := s.jobAllowed(p, id); ok { // and the jobs it may see
					sj.Readers = append(sj.Readers, id)
				}
			}
			out = append(out, sj)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"streams": out})
}

func (s *Server) describeStream(w http.ResponseWriter, r *http.Request) {
	info, err := s.store.DescribeStream(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	sj := toStreamJSON(info, true)
	sj.Readers = s.streamReaders()[info.Name]
	if sj.Readers == nil {
		sj.Readers = []string{}
	}
	writeJSON(w, http.StatusOK, sj)
}

// streamReaders maps streams to the jobs reading them (none without jobs).
func (s *Server) streamReaders() map[string][]string {
	if s.jobs == nil {
		return nil
	}
	return s.jobs.Readers()
}

func (s *Server) deleteStream(w http.ResponseWriter, r *http.Request) {
	if err := s.store.DeleteStream(r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) splitShard(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Shard              string `json:"shard"`
		NewStartingHashKey string `json:"new_starting_hash_key"`
	}
	if err := decodeBody(w, r, smallBody, &req); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	if req.NewStartingHashKey == "" {
		// Default: the middle of the shard's range, as most users want.
		info, err := s.store.DescribeStream(name)
		if err != nil {
			writeError(w, err)
			return
		}
		for _, sh := range info.Shards {
			if sh.ID == req.Shard {
				req.NewStartingHashKey = sh.Range.Mid().String()
			}
		}
		if req.NewStartingHashKey == "" {
			writeError(w, newError("not_found", "shard", fmt.Sprintf("stream %q has no shard %q", name, req.Shard)))
			return
		}
	}
	if err := s.store.SplitShard(name, req.Shard, req.NewStartingHashKey); err != nil {
		writeError(w, err)
		return
	}
	s.describeStream(w, r)
}

func (s *Server) mergeShards(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Shard         string `json:"shard"`
		AdjacentShard string `json:"adjacent_shard"`
	}
	if err := decodeBody(w, r, smallBody, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.store.MergeShards(r.PathValue("name"), req.Shard, req.AdjacentShard); err != nil {
		writeError(w, err)
		return
	}
	s.describeStream(w, r)
}

func (s *Server) updateShardCount(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Target int `json:"target"`
	}
	if err := decodeBody(w, r, smallBody, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.store.UpdateShardCount(r.PathValue("name"), req.Target); err != nil {
		writeError(w, err)
		return
	}
	s.describeStream(w, r)
}

// recordIn is one record of a PUT: exactly one of data (text),
// data_base64 (bytes) or json (any JSON value, stored as compact JSON).
type recordIn struct {
	Key             string          `json:"key"`
	ExplicitHashKey string          `json:"explicit_hash_key,omitempty"`
	Data            *string         `json:"data,omitempty"`
	DataBase64      *string         `json:"data_base64,omitempty"`
	JSON            json.RawMessage `json:"json,omitempty"`
}

type putReq struct {
	Records []recordIn `json:"records"`
}

type putOut struct {
	Shard          string `json:"shard"`
	SequenceNumber string `json:"sequence_number,omitempty"`
	Position       uint64 `json:"position,omitempty"`
	// Error says why a record of a partly stored put was not stored.
	Error *apiError `json:"error,omitempty"`
}

func (s *Server) putRecords(w http.ResponseWriter, r *http.Request) {
	var req putReq
	if err := decodeBody(w, r, recordsBody, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Records) == 0 || len(req.Records) > maxPutBatch {
		writeError(w, newError("invalid_argument", "records", fmt.Sprintf("must hold 1 to %d records, got %d", maxPutBatch, len(req.Records))))
		return
	}
	info, err := s.store.DescribeStream(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	maxData := kinesis.MaxRecordBytes(&info)
	recs := make([]streams.PutRecord, len(req.Records))
	for i, in := range req.Records {
		field := fmt.Sprintf("records[%d]", i)
		if n := utf8.RuneCountInString(in.Key); !utf8.ValidString(in.Key) || n < 1 || n > streams.MaxKeyLen {
			writeError(w, newError("invalid_argument", field+".key", fmt.Sprintf("must be 1 to %d characters of UTF-8 (got %d)", streams.MaxKeyLen, n)))
			return
		}
		n, dataField := 0, ""
		if in.Data != nil {
			n, dataField = n+1, ".data"
			recs[i].Data = []byte(*in.Data)
		}
		if in.DataBase64 != nil {
			n, dataField = n+1, ".data_base64"
			b, err := base64.StdEncoding.DecodeString(*in.DataBase64)
			if err != nil {
				writeError(w, newError("invalid_argument", field+".data_base64", "is not valid base64: "+err.Error()))
				return
			}
			recs[i].Data = b
		}
		if len(in.JSON) > 0 {
			n, dataField = n+1, ".json"
			recs[i].Data = compactJSON(in.JSON)
		}
		if n != 1 {
			writeError(w, newError("invalid_argument", field, "give exactly one of data, data_base64 or json"))
			return
		}
		if len(recs[i].Data) > maxData {
			writeError(w, newError("invalid_argument", field+dataField, fmt.Sprintf("is %d bytes; a record of stream %s holds at most %d bytes", len(recs[i].Data), info.Name, maxData)))
			return
		}
		recs[i].PartitionKey, recs[i].ExplicitHashKey = in.Key, in.ExplicitHashKey
	}
	res, err := s.store.Put(r.Context(), r.PathValue("name"), recs)
	var partial *streams.PartialPutError
	if err != nil && !errors.As(err, &partial) {
		writeError(w, err)
		return
	}
	out := make([]putOut, len(res))
	for i, p := range res {
		if p.Err != nil {
			out[i] = putOut{Shard: p.ShardID, Error: recordError(&p)}
			continue
		}
		out[i] = putOut{Shard: p.ShardID, SequenceNumber: p.SequenceNumber(), Position: p.Seq}
	}
	if partial != nil {
		// Not a 2xx, so that a client that only looks at the status does
		// not take the records that were not stored for stored; the
		// status and code are those of a put refused whole for the same
		// reasons: unavailable (503) when every failed record may be sent
		// again as it is, else internal (500).
		code := "unavailable"
		for _, o := range out {
			if o.Error != nil && o.Error.Code != "unavailable" {
				code = "internal"
			}
		}
		e := newError(code, "", fmt.Sprintf("%d of the %d records were not stored, the others were: send again only the records with an error", partial.Failed, len(res)))
		if e.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeJSON(w, e.Status, map[string]any{"error": e, "failed_record_count": partial.Failed, "records": out})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": out})
}

// recordError is the error of a record a partly stored put did not store.
// The message names the shard, not the server's files.
func recordError(p *streams.PutResult) *apiError {
	switch {
	case streams.OutOfFiles(p.Err):
		return newError("unavailable", "", fmt.Sprintf("shard %s did not store the record: the server has no file descriptors left (its open-file limit); send it again later", p.ShardID))
	case errors.Is(p.Err, streams.ErrUnavailable):
		return newError("unavailable", "", fmt.Sprintf("shard %s did not store the record: the disk is full; send it again once space is freed", p.ShardID))
	case errors.Is(p.Err, streams.ErrMaybeStored):
		return newError("internal", "", fmt.Sprintf("shard %s failed to write: the record may have been stored, and sending it again may store it twice", p.ShardID))
	case errors.Is(p.Err, streams.ErrClosed):
		return newError("unavailable", "", fmt.Sprintf("shard %s did not store the record: the server is shutting down", p.ShardID))
	}
	return newError("internal", "", fmt.Sprintf("shard %s did not store the record: it failed to write (it takes writes again after a restart of the server)", p.ShardID))
}

// compactJSON stores a JSON value without insignificant whitespace. The
// decoder has already validated it.
func compactJSON(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

type recordOut struct {
	SequenceNumber string `json:"sequence_number"`
	Position       uint64 `json:"position"`
	PartitionKey   string `json:"key"`
	Arrival        string `json:"arrival"`
	Data           string `json:"data,omitempty"`
	DataBase64     string `json:"data_base64,omitempty"`
}

type readOut struct {
	Shard              string      `json:"shard"`
	Records            []recordOut `json:"records"`
	NextPosition       uint64      `json:"next_position"`
	MillisBehindLatest int64       `json:"millis_behind_latest"`
	EndOfShard         bool        `json:"end_of_shard,omitempty"`
	ChildShards        []string    `json:"child_shards,omitempty"`
}

// getRecords reads one shard. Query: shard (required), then either
// position=N (a next_position from an earlier read) or from=trim_horizon|
// latest|at_sequence_number|after_sequence_number|at_timestamp with
// sequence_number= or timestamp= (RFC 3339); limit (≤ 10000); wait (a
// duration: block up to that long for new records when caught up).
func (s *Server) getRecords(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	shard := q.Get("shard")
	if shard == "" {
		writeError(w, newError("invalid_argument", "shard", "the shard query parameter is required (e.g. shard=shardId-000000000000)"))
		return
	}
	limit := streams.MaxReadRecords
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > streams.MaxReadRecords {
			writeError(w, newError("invalid_argument", "limit", fmt.Sprintf("%q must be an integer from 1 to %d", l, streams.MaxReadRecords)))
			return
		}
		limit = n
	}
	var wait time.Duration
	if ws := q.Get("wait"); ws != "" {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 || d > time.Minute {
			writeError(w, newError("invalid_argument", "wait", fmt.Sprintf("%q must be a duration up to 1m (e.g. 5s)", ws)))
			return
		}
		wait = d
	}
	pos, err := s.resolvePosition(name, shard, q)
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.store.Read(name, shard, pos, limit, 0)
	if err == nil && len(res.Records) == 0 && !res.EndOfShard && wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		werr := s.store.Wait(ctx, name, shard, res.Next)
		cancel()
		if werr == nil {
			res, err = s.store.Read(name, shard, res.Next, limit, 0)
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	out := readOut{Shard: shard, Records: make([]recordOut, len(res.Records)), NextPosition: res.Next,
		MillisBehindLatest: res.MillisBehind, EndOfShard: res.EndOfShard, ChildShards: res.Children}
	idx, _ := streams.ParseShardID(shard)
	for i, rec := range res.Records {
		o := recordOut{SequenceNumber: streams.FormatSeq(res.Tag, idx, rec.Seq), Position: rec.Seq, PartitionKey: rec.PartitionKey,
			Arrival: apitime.FormatMillis(rec.Arrival)}
		if utf8.Valid(rec.Data) {
			o.Data = string(rec.Data)
		} else {
			o.DataBase64 = base64.StdEncoding.EncodeToString(rec.Data)
		}
		out.Records[i] = o
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) resolvePosition(name, shard string, q map[string][]string) (uint64, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if p := get("position"); p != "" {
		n, err := streams.ParseCounter(p)
		if err != nil {
			return 0, newError("invalid_argument", "position", fmt.Sprintf("%q must be a next_position from an earlier read", p))
		}
		return n, nil
	}
	from := strings.ToUpper(get("from"))
	if from == "" {
		from = string(streams.TrimHorizon)
	}
	var ts time.Time
	if from == string(streams.AtTimestamp) {
		var err error
		if ts, err = time.Parse(time.RFC3339Nano, get("timestamp")); err != nil {
			return 0, newError("invalid_argument", "timestamp", fmt.Sprintf("%q is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)", get("timestamp")))
		}
	}
	n, err := s.store.Seek(name, shard, streams.IteratorType(from), get("sequence_number"), ts)
	if err != nil {
		var se *streams.Error
		if e, ok := err.(*streams.Error); ok {
			se = e
		}
		if se != nil && se.Field == "type" {
			return 0, newError("invalid_argument", "from", fmt.Sprintf("%q is not one of trim_horizon, latest, at_sequence_number, after_sequence_number, at_timestamp", get("from")))
		}
		return 0, err
	}
	return n, nil
}
