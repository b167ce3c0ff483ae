package jobs

// The decode settings the kafka and kinesis sources share: the schemas of
// source.format csv, avro and protobuf (sources/codec).

import (
	"fmt"
	"strings"

	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/sources/codec"
)

// codecFormats are the source.format values of the kafka and kinesis
// sources.
var codecFormats = []string{"json", "text", "bytes", "csv", "avro", "protobuf"}

// Decode holds the schemas of a connector source's format.
type Decode struct {
	CSV      *DecodeCSV      `yaml:"csv"`
	Avro     *DecodeAvro     `yaml:"avro"`
	Protobuf *DecodeProtobuf `yaml:"protobuf"`
	Registry *DecodeRegistry `yaml:"registry"`
}

// DecodeCSV reads one row per record (codec.CSV).
type DecodeCSV struct {
	Columns   []string `yaml:"columns"`
	Numbers   []string `yaml:"numbers"`
	Delimiter string   `yaml:"delimiter"`
}

// DecodeAvro is the writer schema of records without a registry.
type DecodeAvro struct {
	Schema string `yaml:"schema"`
}

// DecodeProtobuf names the message type (codec.Protobuf).
type DecodeProtobuf struct {
	Message       string `yaml:"message"`
	DescriptorSet string `yaml:"descriptor_set"`
}

// DecodeRegistry is a Confluent-compatible schema registry (codec.Registry).
type DecodeRegistry struct {
	URL         string `yaml:"url"`
	Username    string `yaml:"username"`
	PasswordEnv string `yaml:"password_env"`
}

// decodeFields documents decode: under a connector source.
var decodeFields = []Field{
	{"decode", "mapping", "—", "schemas for `format` csv, avro or protobuf; see docs/connectors.md#decoding"},
	{"decode.csv", "mapping", "—", "format csv: one row per record"},
	{"decode.csv.columns", "list of strings", "required", "field names, in order"},
	{"decode.csv.numbers", "list of strings", "none", "columns decoded as numbers (empty: null)"},
	{"decode.csv.delimiter", "string", "`,`", "one character"},
	{"decode.avro", "mapping", "—", "format avro without a registry"},
	{"decode.avro.schema", "string", "required", "the writer schema, Avro JSON"},
	{"decode.protobuf", "mapping", "—", "format protobuf"},
	{"decode.protobuf.message", "string", "required without a registry", "full message name, `package.Message`"},
	{"decode.protobuf.descriptor_set", "string", "required without a registry", "base64 FileDescriptorSet with the message's file and imports"},
	{"decode.registry", "mapping", "—", "Confluent-compatible schema registry for avro and protobuf (wire format records)"},
	{"decode.registry.url", "string", "required", "`http://` or `https://` base URL"},
	{"decode.registry.username", "string", "none", "HTTP basic auth user (with `password_env`)"},
	{"decode.registry.password_env", "string", "none", "name of the server's environment variable holding the password"},
}

// decode parses decode: of a connector source mapping.
func (p *parser) decode(f fieldMap) *Decode {
	m, ok := p.sub(f, "decode")
	if !ok {
		return nil
	}
	d := &Decode{}
	if c, ok := p.sub(m, "csv"); ok {
		d.CSV = &DecodeCSV{Columns: p.names(c, "columns", false), Numbers: p.names(c, "numbers", true), Delimiter: p.str(c, "delimiter")}
	}
	if a, ok := p.sub(m, "avro"); ok {
		d.Avro = &DecodeAvro{Schema: p.str(a, "schema")}
	}
	if pb, ok := p.sub(m, "protobuf"); ok {
		d.Protobuf = &DecodeProtobuf{Message: p.str(pb, "message"), DescriptorSet: p.str(pb, "descriptor_set")}
	}
	if r, ok := p.sub(m, "registry"); ok {
		d.Registry = &DecodeRegistry{URL: p.str(r, "url"), Username: p.str(r, "username"), PasswordEnv: p.str(r, "password_env")}
	}
	return d
}

// codecConfig maps source.format and decode onto the codec's settings.
func codecConfig(format string, d *Decode) codec.Config {
	c := codec.Config{Format: sources.Format(format)}
	if d == nil {
		return c
	}
	if d.CSV != nil {
		c.CSV = &codec.CSV{Columns: d.CSV.Columns, Numbers: d.CSV.Numbers, Delimiter: d.CSV.Delimiter}
	}
	if d.Avro != nil {
		c.Avro = d.Avro.Schema
	}
	if d.Protobuf != nil {
		c.Protobuf = &codec.Protobuf{Message: d.Protobuf.Message, DescriptorSet: d.Protobuf.DescriptorSet}
	}
	if d.Registry != nil {
		c.Registry = &codec.Registry{URL: d.Registry.URL, Username: d.Registry.Username, PasswordEnv: d.Registry.PasswordEnv}
	}
	return c
}

// validateDecode checks the decode settings of the kind at path.
func validateDecode(v *validator, path, format string, d *Decode) {
	if c := codecConfig(format, d); c.Validate() != nil {
		err := c.Validate()
		v.add(path+".decode", CodeInvalid, strings.TrimPrefix(err.Error(), "sources: invalid configuration: "), "see docs/connectors.md#decoding")
	}
}

// newDecoders returns a decoder factory for the source, or an error.
func newDecoders(format string, d *Decode) (func() codec.Decoder, error) {
	c, err := codec.New(codecConfig(format, d))
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return c.NewDecoder, nil
}
