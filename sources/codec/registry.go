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
	"strconv"
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
	Schema     string              `json:"schema"`
	SchemaType string              `json:"schemaType"`
	References []registryReference `json:"references"`
}

// registryReference names a schema another one uses: for Avro, Name is the
// full name of the type it defines; for Protobuf, the import path.
type registryReference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

func (ref registryReference) path() string {
	return fmt.Sprintf("/subjects/%s/versions/%d", url.PathEscape(ref.Subject), ref.Version)
}

// Bounds on the references followed for one schema: a registry that
// answers with an endless or cyclic chain gets an error, not a loop.
const (
	maxReferenceDepth = 16
	maxReferences     = 256
)

// references is the state of one schema's reference walk.
type references struct {
	seen map[string]bool // subject/version already fetched
}

// next checks the bounds for ref at depth and reports whether it is new.
func (rs *references) next(ref registryReference, depth int) (bool, error) {
	if depth > maxReferenceDepth {
		return false, fmt.Errorf("reference %s (subject %s version %d) is nested deeper than %d references", ref.Name, ref.Subject, ref.Version, maxReferenceDepth)
	}
	key := ref.Subject + "/" + strconv.Itoa(ref.Version)
	if rs.seen[key] {
		return false, nil
	}
	if len(rs.seen) >= maxReferences {
		return false, fmt.Errorf("more than %d referenced schemas", maxReferences)
	}
	rs.seen[key] = true
	return true, nil
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
	// A cache of this schema's own: the named types of its references,
	// and not those of other schemas (which may define the same names).
	cache := &avro.SchemaCache{}
	if err := r.avroReferences(rs.References, cache, &references{seen: map[string]bool{}}, 1); err != nil {
		return nil, fmt.Errorf("schema registry: Avro schema %d: %w", id, err)
	}
	s, err := avro.ParseWithCache(rs.Schema, "", cache)
	if err != nil {
		return nil, fmt.Errorf("schema registry: Avro schema %d: %w", id, err)
	}
	r.avro.put(id, s)
	return s, nil
}

// avroReferences fetches the schemas refs name and, first, the schemas
// those reference, depth first, parsing each into cache so that the
// schemas after it can use its named types.
func (r *registry) avroReferences(refs []registryReference, cache *avro.SchemaCache, walk *references, depth int) error {
	for _, ref := range refs {
		fresh, err := walk.next(ref, depth)
		if err != nil {
			return err
		}
		if !fresh {
			continue
		}
		var rs registrySchema
		if err := r.get(ref.path(), &rs); err != nil {
			return fmt.Errorf("reference %s: %w", ref.Name, err)
		}
		if rs.SchemaType != "" && rs.SchemaType != "AVRO" {
			return fmt.Errorf("reference %s (subject %s version %d) is %s, not AVRO", ref.Name, ref.Subject, ref.Version, rs.SchemaType)
		}
		if err := r.avroReferences(rs.References, cache, walk, depth+1); err != nil {
			return err
		}
		if _, err := avro.ParseWithCache(rs.Schema, "", cache); err != nil {
			return fmt.Errorf("reference %s (subject %s version %d): %w", ref.Name, ref.Subject, ref.Version, err)
		}
	}
	return nil
}

// protoFiles fetches the serialized descriptor of a Protobuf schema and,
// depth first, of the schemas it references.
func (r *registry) protoFiles(path string, walk *references, depth int, out *[]*descriptorpb.FileDescriptorProto) error {
	var rs registrySchema
	if err := r.get(path+"?format=serialized", &rs); err != nil {
		return err
	}
	if rs.SchemaType != "PROTOBUF" {
		return fmt.Errorf("schema registry: %s is %q, not PROTOBUF", path, rs.SchemaType)
	}
	for _, ref := range rs.References {
		fresh, err := walk.next(ref, depth)
		if err != nil {
			return fmt.Errorf("schema registry: %s: %w", path, err)
		}
		if !fresh {
			continue
		}
		if err := r.protoFiles(ref.path(), walk, depth+1, out); err != nil {
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
