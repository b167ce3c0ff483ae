package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnel-dev/runnel/sinks"
)

// PutAt writes rows, one segment of an external ordered input (the
// records of a Kafka partition between two markers, say) that arrived at
// arrival, as objects whose names end in JOB-SINK-ID: one per key prefix
// (and per error-output prefix) under Prefix + Partition(row), published
// at once (an S3 object appears whole). The names and contents depend
// only on rows, arrival and id, so writing a segment again after a crash
// replaces its objects rather than adding any: the caller gets exactly
// once by giving each segment an id of its own and the same id on every
// replay. PutAt does not touch what Write buffers, and ignores Suffix
// (its names are always deterministic).
func (s *Sink) PutAt(ctx context.Context, id string, rows []sinks.Row, arrival time.Time) error {
	saved := s.buffers
	s.buffers = map[string]*buffer{}
	defer func() { s.buffers = saved }()
	s.add(rows, arrival)
	name := keySegment(s.cfg.Job) + "-" + keySegment(s.cfg.Sink) + "-" + keySegment(id)
	for round := 0; len(s.buffers) > 0; round++ {
		// Encoding a Parquet object may send rows to error buffers: a
		// second round writes those, named apart from the first's.
		suffix := name
		if round > 0 {
			suffix += "-" + strconv.Itoa(round)
		}
		for _, k := range slices.Sorted(maps.Keys(s.buffers)) {
			b := s.buffers[k]
			delete(s.buffers, k)
			body, ext, ctype, err := s.encode(b)
			if err != nil {
				return fmt.Errorf("s3 sink %s: segment %s: %w", s.cfg.Sink, id, err)
			}
			if body == nil {
				continue
			}
			key := b.prefix + suffix + ext
			if _, err := s.cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key),
				Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String(ctype)}); err != nil {
				return fmt.Errorf("s3 sink %s: put s3://%s/%s: %w", s.cfg.Sink, s.cfg.Bucket, key, err)
			}
		}
	}
	return nil
}

// positionKey is the object that holds task's position for PutAt's
// caller, under the staging prefix (never under Prefix).
func (s *Sink) positionKey(task string) string {
	return s.stagingJob() + "positions/" + keySegment(task)
}

// Position returns the position stored for task by SetPosition (0:
// none). It is where a replay may start: segments before it were put.
func (s *Sink) Position(ctx context.Context, task string) (int64, error) {
	out, err := s.cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.positionKey(task))})
	if isNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("s3 sink %s: read position of %s: %w", s.cfg.Sink, task, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return 0, fmt.Errorf("s3 sink %s: read position of %s: %w", s.cfg.Sink, task, err)
	}
	pos, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("s3 sink %s: position of %s (s3://%s/%s) is damaged: %q", s.cfg.Sink, task, s.cfg.Bucket, s.positionKey(task), b)
	}
	return pos, nil
}

// SetPosition stores task's position: the segments before it are put.
func (s *Sink) SetPosition(ctx context.Context, task string, pos int64) error {
	body := strconv.AppendInt(nil, pos, 10)
	if _, err := s.cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.positionKey(task)),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("text/plain")}); err != nil {
		return fmt.Errorf("s3 sink %s: store position of %s: %w", s.cfg.Sink, task, err)
	}
	return nil
}

// MovePosition gives task to the position stored for task from, unless to
// has one already, and deletes from's: a caller that changed how it names
// a task takes over the position of the old name, once. (A crash between
// the two leaves from's too; the next MovePosition to the same task
// deletes it.)
func (s *Sink) MovePosition(ctx context.Context, from, to string) error {
	if _, err := s.cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.positionKey(to))}); err == nil {
		return s.deletePosition(ctx, from)
	} else if !isNotFound(err) {
		return fmt.Errorf("s3 sink %s: read position of %s: %w", s.cfg.Sink, to, err)
	}
	pos, err := s.Position(ctx, from)
	if err != nil || pos == 0 {
		return err
	}
	if err := s.SetPosition(ctx, to, pos); err != nil {
		return err
	}
	return s.deletePosition(ctx, from)
}

func (s *Sink) deletePosition(ctx context.Context, task string) error {
	if _, err := s.cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.positionKey(task))}); err != nil && !isNotFound(err) {
		return fmt.Errorf("s3 sink %s: delete position of %s: %w", s.cfg.Sink, task, err)
	}
	return nil
}
