package codec

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/hamba/avro/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// registry fetches schemas by id from a Confluent-compatible registry
// (GET /schemas/ids/{id}, /subjects/{subject}/versions/{version}).
type registry struct {
	base     *url.URL
	user     string
	password string
	hc       *http.Client
	avro     schemaCache[avro.Schema]
	proto    schemaCache[*protoSchema]
}

func newRegistry(r Registry, hc *http.Client, env bool) (*registry, error) {
	u, err := url.Parse(strings.TrimRight(r.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, configErr("registry.url %q: give an http:// or https:// URL", r.URL)
	}
	if u.User != nil {
		return nil, configErr("registry.url: no credentials in the URL; use username and password_env")
	}
	reg := &registry{base: u, user: r.Username, hc: hc}
	if r.Username != "" || r.PasswordEnv != "" {
		if r.Username == "" || r.PasswordEnv == "" {
			return nil, configErr("registry: give both username and password_env")
		}
		p, ok := os.LookupEnv(r.PasswordEnv)
		if !ok && env {
			return nil, configErr("registry.password_env: the server has no environment variable %s", r.PasswordEnv)
		}
		reg.password = p
	}
	return reg, nil
}

// ErrWireFormat marks a record that is not in the Confluent wire format.
var ErrWireFormat = errors.New("codec: not a schema registry record (magic byte 0 and a 4-byte schema id)")

// splitWire returns the schema id and the rest of a wire-format record.
func splitWire(data []byte) (uint32, []byte, error) {
	if len(data) < 5 || data[0] != 0 {
		return 0, nil, ErrWireFormat
	}
	return binary.BigEndian.Uint32(data[1:5]), data[5:], nil
}

type registrySchema struct {
	Schema     string `json:"schema"`
	SchemaType string `json:"schemaType"`
	References []struct {
		Name    string `json:"name"`
		Subject string `json:"subject"`
		Version int    `json:"version"`
	} `json:"references"`
}

func (r *registry) get(path string, out any) error {
	req, err := http.NewRequest(http.MethodGet, r.base.String()+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.schemaregistry.v1+json, application/json")
	if r.user != "" {
		req.SetBasicAuth(r.user, r.password)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("schema registry: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("schema registry: GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("schema registry: GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("schema registry: GET %s: %w", path, err)
	}
	return nil
}

func (r *registry) avroSchema(id uint32) (avro.Schema, error) {
	if s, ok := r.avro.get(id); ok {
		return s, nil
	}
	var rs registrySchema
	if err := r.get(fmt.Sprintf("/schemas/ids/%d", id), &rs); err != nil {
		return nil, err
	}
	if rs.SchemaType != "" && rs.SchemaType != "AVRO" {
		return nil, fmt.Errorf("schema registry: schema %d is %s, not AVRO", id, rs.SchemaType)
	}
	if len(rs.References) > 0 {
		return nil, fmt.Errorf("schema registry: Avro schema %d has references, which are not supported", id)
	}
	s, err := avro.Parse(rs.Schema)
	if err != nil {
		return nil, fmt.Errorf("schema registry: Avro schema %d: %w", id, err)
	}
	r.avro.put(id, s)
	return s, nil
}

// protoFiles fetches the serialized descriptor of a Protobuf schema and,
// depth first, of the schemas it references.
func (r *registry) protoFiles(path string, seen map[string]bool, out *[]*descriptorpb.FileDescriptorProto) error {
	var rs registrySchema
	if err := r.get(path+"?format=serialized", &rs); err != nil {
		return err
	}
	if rs.SchemaType != "PROTOBUF" {
		return fmt.Errorf("schema registry: %s is %q, not PROTOBUF", path, rs.SchemaType)
	}
	for _, ref := range rs.References {
		if seen[ref.Name] {
			continue
		}
		seen[ref.Name] = true
		if err := r.protoFiles(fmt.Sprintf("/subjects/%s/versions/%d", url.PathEscape(ref.Subject), ref.Version), seen, out); err != nil {
			return err
		}
	}
	raw, err := base64.StdEncoding.DecodeString(rs.Schema)
	if err != nil {
		return fmt.Errorf("schema registry: %s: serialized schema is not base64: %w", path, err)
	}
	fd := &descriptorpb.FileDescriptorProto{}
	if err := proto.Unmarshal(raw, fd); err != nil {
		return fmt.Errorf("schema registry: %s: %w", path, err)
	}
	*out = append(*out, fd)
	return nil
}
