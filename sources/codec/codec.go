package codec

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/runnel-dev/runnel/sources"
)

// Formats beyond sources' json, text and bytes.
const (
	FormatCSV      sources.Format = "csv"
	FormatAvro     sources.Format = "avro"
	FormatProtobuf sources.Format = "protobuf"
)

// Config says how record bytes are decoded.
type Config struct {
	// Format is json (default), text, bytes, csv, avro or protobuf.
	Format sources.Format
	CSV    *CSV
	// Avro is the writer schema (Avro JSON) of records without a
	// registry.
	Avro string
	// Protobuf names the message type, in a descriptor set given here or
	// found through the registry.
	Protobuf *Protobuf
	// Registry, for avro and protobuf, reads records in the Confluent
	// wire format and fetches their schemas by id.
	Registry *Registry
}

// CSV decodes each record as one CSV row into an object.
type CSV struct {
	// Columns name the fields, in order.
	Columns []string
	// Delimiter is one character; default ",".
	Delimiter string
	// Numbers lists columns decoded as numbers (others are strings; an
	// empty field is null).
	Numbers []string
}

// Protobuf names a message type.
type Protobuf struct {
	// Message is the full name (package.Message). With a registry it is
	// optional: the record's message indexes say which.
	Message string
	// DescriptorSet is a serialized google.protobuf.FileDescriptorSet,
	// base64, with the message's file and its imports.
	DescriptorSet string
}

// Registry is a Confluent-compatible schema registry.
type Registry struct {
	URL string
	// Username and PasswordEnv, when set, log in with HTTP basic auth;
	// the password is read from the server's environment variable
	// PasswordEnv, never from the job file.
	Username    string
	PasswordEnv string
}

// Validate checks the configuration and parses the schemas given inline;
// unlike New it does not look up the registry password's environment
// variable (a job is validated where it is submitted, built where it runs).
func (c *Config) Validate() error {
	_, err := newCodec(*c, false)
	return err
}

// Decoder decodes one record; each source reader has its own.
type Decoder interface {
	Decode(data []byte) (any, error)
}

// Codec is a checked configuration with its parsed schemas and the cache
// of registry schemas. It is safe for concurrent use; NewDecoder makes a
// decoder for one goroutine.
type Codec struct {
	cfg   Config
	csv   *csvSpec
	avro  avro.Schema
	proto protoreflect.MessageDescriptor
	reg   *registry
}

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", sources.ErrConfig, fmt.Sprintf(format, args...))
}

// New checks cfg and parses the schemas it holds.
func New(cfg Config) (*Codec, error) { return newCodec(cfg, true) }

func newCodec(cfg Config, env bool) (*Codec, error) {
	c := &Codec{cfg: cfg}
	switch cfg.Format {
	case "", sources.FormatJSON, sources.FormatText, sources.FormatBytes:
		if cfg.CSV != nil || cfg.Avro != "" || cfg.Protobuf != nil || cfg.Registry != nil {
			return nil, configErr("format %s takes no csv, avro, protobuf or registry settings", orJSON(cfg.Format))
		}
	case FormatCSV:
		spec, err := newCSV(cfg.CSV)
		if err != nil {
			return nil, err
		}
		c.csv = spec
	case FormatAvro:
		if (cfg.Avro == "") == (cfg.Registry == nil) {
			return nil, configErr("format avro needs exactly one of avro (a schema) or registry")
		}
		if cfg.Avro != "" {
			s, err := avro.Parse(cfg.Avro)
			if err != nil {
				return nil, configErr("avro schema: %v", err)
			}
			c.avro = s
		}
	case FormatProtobuf:
		p := cfg.Protobuf
		if cfg.Registry == nil {
			if p == nil || p.Message == "" || p.DescriptorSet == "" {
				return nil, configErr("format protobuf needs protobuf.message and protobuf.descriptor_set, or a registry")
			}
			raw, err := base64.StdEncoding.DecodeString(p.DescriptorSet)
			if err != nil {
				return nil, configErr("protobuf.descriptor_set is not base64: %v", err)
			}
			md, err := messageFromSet(raw, p.Message)
			if err != nil {
				return nil, configErr("protobuf: %v", err)
			}
			c.proto = md
		} else if p != nil && p.DescriptorSet != "" {
			return nil, configErr("protobuf: give a descriptor_set or a registry, not both")
		}
	default:
		return nil, configErr("format %q: use json, text, bytes, csv, avro or protobuf", string(cfg.Format))
	}
	if cfg.Registry != nil {
		r, err := newRegistry(*cfg.Registry, &http.Client{Timeout: 30 * time.Second}, env)
		if err != nil {
			return nil, err
		}
		c.reg = r
	}
	return c, nil
}

func orJSON(f sources.Format) sources.Format {
	if f == "" {
		return sources.FormatJSON
	}
	return f
}

// NewDecoder returns a decoder for one goroutine.
func (c *Codec) NewDecoder() Decoder {
	switch c.cfg.Format {
	case FormatCSV:
		return &csvDecoder{spec: c.csv}
	case FormatAvro:
		return &avroDecoder{c: c, byID: map[uint32]avro.Schema{}}
	case FormatProtobuf:
		return &protoDecoder{c: c}
	}
	return sources.NewDecoder(c.cfg.Format)
}

// schemaCache is a registry's schemas by id, shared by the decoders.
type schemaCache[T any] struct {
	mu sync.Mutex
	m  map[uint32]T
}

func (s *schemaCache[T]) get(id uint32) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	return v, ok
}

func (s *schemaCache[T]) put(id uint32, v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[uint32]T{}
	}
	s.m[id] = v
}
