package kinesis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strings"
)

// Resource policies (PutResourcePolicy) are enforced for the callers the
// authentication layer knows. That layer (package web) puts a Caller in
// each request's context; without one (auth off) policies are stored and
// returned but not enforced, since every caller is then an admin anyway.
//
// A caller is an IAM user of the server's account:
// arn:aws:iam::ACCOUNT:user/TOKEN-NAME, for an access key and a bearer
// token alike. A statement's Principal matches it when it is "*", that
// ARN, the account ID or arn:aws:iam::ACCOUNT:root (the whole account).
//
// Evaluation is AWS's for principals of the resource's own account: the
// token's role and stream grants play its identity policy. An explicit
// Deny of a matching statement refuses the call whatever the role; an
// Allow lets it through even where the role or the stream grants alone
// would not (only an admin may put a policy); with neither, the role and
// grants decide; only an admin's calls that manage the policies themselves
// are exempt, so that a policy cannot lock itself in. The resource is the
// stream's ARN, or the consumer's ARN
// for the operations that name a consumer by its ARN.

// Caller is the authenticated principal of a request.
type Caller struct {
	// Name is the token's name; the principal ARN is built from it.
	Name string
	// Refusal, when set, is why the caller's role or stream grants do not
	// allow the operation; the call is refused with it unless a resource
	// policy allows it.
	Refusal string
	// Sees reports whether a stream's name may be shown to the caller
	// (ListStreams); nil shows every stream.
	Sees func(stream string) bool
	// Admin marks a caller that may always manage resource policies
	// (Put/Get/DeleteResourcePolicy), whatever a policy says, so that no
	// policy can lock every token out of changing it.
	Admin bool
	// Refused, when set, is called each time the handler refuses the call
	// (for the authentication layer's metrics and log).
	Refused func()
}

type callerKey struct{}

type bodyKey struct{}

// WithBody returns ctx carrying a request's body that the layer in front
// of the handler has read already (to check its signature); the handler
// then uses it rather than reading (and copying) the body again. The
// caller owns body and may reuse it once the handler has returned.
func WithBody(ctx context.Context, body []byte) context.Context {
	return context.WithValue(ctx, bodyKey{}, body)
}

func bodyFrom(ctx context.Context) ([]byte, bool) {
	b, ok := ctx.Value(bodyKey{}).([]byte)
	return b, ok
}

// WithCaller returns ctx carrying c, for the handler to enforce resource
// policies and stream visibility with.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

func callerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

func (c *Caller) refused() {
	if c.Refused != nil {
		c.Refused()
	}
}

func (h *Handler) principalARN(c *Caller) string {
	return "arn:aws:iam::" + h.opts.AccountID + ":user/" + c.Name
}

// policyDoc is a parsed resource policy.
type policyDoc struct {
	stmts []policyStmt
}

type policyStmt struct {
	sid                string
	allow              bool
	notPrincipal       bool
	principals         []string // "*" for anyone
	notAction, notRes  bool
	actions, resources []string
	conditional        bool // has a Condition: not evaluated (see parsePolicy)
}

// stringOrList is an IAM policy element that is a string or a list of them.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("must be a string or a list of strings")
	}
	*s = many
	return nil
}

// principalElem is "*" or {"AWS": string or list}.
type principalElem struct {
	set  bool
	list []string
}

func (p *principalElem) UnmarshalJSON(b []byte) error {
	p.set = true
	var star string
	if err := json.Unmarshal(b, &star); err == nil {
		if star != "*" {
			return fmt.Errorf(`must be "*" or {"AWS": ...}`)
		}
		p.list = []string{"*"}
		return nil
	}
	var m map[string]stringOrList
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf(`must be "*" or {"AWS": ...}`)
	}
	for k, v := range m {
		if k != "AWS" {
			return fmt.Errorf("principal type %q is not one Runnel knows (only AWS)", k)
		}
		p.list = append(p.list, v...)
	}
	if len(p.list) == 0 {
		return fmt.Errorf("names no principal")
	}
	return nil
}

type rawStmt struct {
	Sid          string          `json:"Sid"`
	Effect       string          `json:"Effect"`
	Principal    principalElem   `json:"Principal"`
	NotPrincipal principalElem   `json:"NotPrincipal"`
	Action       stringOrList    `json:"Action"`
	NotAction    stringOrList    `json:"NotAction"`
	Resource     stringOrList    `json:"Resource"`
	NotResource  stringOrList    `json:"NotResource"`
	Condition    json.RawMessage `json:"Condition"`
}

// parsePolicy reads a resource policy. strict (PutResourcePolicy) refuses
// a Condition, which Runnel cannot evaluate; a stored policy read
// leniently treats a conditional Deny as applying and a conditional Allow
// as not, so that what cannot be evaluated never widens access.
func parsePolicy(text string, strict bool) (*policyDoc, error) {
	var doc struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if !json.Valid([]byte(text)) {
		return nil, fmt.Errorf("Policy is not a JSON document.")
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("Policy is not a JSON object: %v", err)
	}
	var raws []rawStmt
	if len(doc.Statement) > 0 && doc.Statement[0] == '{' {
		var one rawStmt
		if err := json.Unmarshal(doc.Statement, &one); err != nil {
			return nil, fmt.Errorf("Policy statement: %v", err)
		}
		raws = []rawStmt{one}
	} else if err := json.Unmarshal(doc.Statement, &raws); err != nil || doc.Statement == nil {
		if err == nil {
			err = fmt.Errorf("missing")
		}
		return nil, fmt.Errorf("Policy Statement: %v", err)
	}
	p := &policyDoc{}
	for i, r := range raws {
		where := fmt.Sprintf("Policy Statement %d", i+1)
		if r.Sid != "" {
			where += " (" + r.Sid + ")"
		}
		st := policyStmt{sid: r.Sid}
		switch r.Effect {
		case "Allow":
			st.allow = true
		case "Deny":
		default:
			return nil, fmt.Errorf("%s: Effect must be Allow or Deny, not %q", where, r.Effect)
		}
		switch {
		case r.Principal.set && !r.NotPrincipal.set:
			st.principals = r.Principal.list
		case r.NotPrincipal.set && !r.Principal.set:
			st.principals, st.notPrincipal = r.NotPrincipal.list, true
		default:
			return nil, fmt.Errorf("%s: needs exactly one of Principal and NotPrincipal", where)
		}
		switch {
		case len(r.Action) > 0 && len(r.NotAction) == 0:
			st.actions = r.Action
		case len(r.NotAction) > 0 && len(r.Action) == 0:
			st.actions, st.notAction = r.NotAction, true
		default:
			return nil, fmt.Errorf("%s: needs exactly one of Action and NotAction", where)
		}
		switch {
		case len(r.Resource) > 0 && len(r.NotResource) == 0:
			st.resources = r.Resource
		case len(r.NotResource) > 0 && len(r.Resource) == 0:
			st.resources, st.notRes = r.NotResource, true
		default:
			return nil, fmt.Errorf("%s: needs exactly one of Resource and NotResource", where)
		}
		if len(r.Condition) > 0 && string(r.Condition) != "null" {
			if strict {
				return nil, fmt.Errorf("%s: Condition is not supported by this server (it cannot be evaluated here)", where)
			}
			st.conditional = true
		}
		p.stmts = append(p.stmts, st)
	}
	return p, nil
}

// decision is what a policy says about one call.
type decision int

const (
	noDecision decision = iota
	allowed
	denied
)

// evaluate applies p to principal (an ARN) doing action (kinesis:Op) on
// resource (an ARN), with account the server's account ID.
func (p *policyDoc) evaluate(principal, account, action, resource string) decision {
	d := noDecision
	for i := range p.stmts {
		st := &p.stmts[i]
		if !st.matches(principal, account, action, resource) {
			continue
		}
		if !st.allow {
			return denied
		}
		if !st.conditional {
			d = allowed
		}
	}
	return d
}

func (st *policyStmt) matches(principal, account, action, resource string) bool {
	pm := false
	for _, q := range st.principals {
		if q == "*" || q == principal || q == account || q == "arn:aws:iam::"+account+":root" {
			pm = true
			break
		}
	}
	if pm == st.notPrincipal {
		return false
	}
	am := false
	for _, q := range st.actions {
		if globMatch(strings.ToLower(q), strings.ToLower(action)) {
			am = true
			break
		}
	}
	if am == st.notAction {
		return false
	}
	rm := false
	for _, q := range st.resources {
		if globMatch(q, resource) {
			rm = true
			break
		}
	}
	return rm != st.notRes
}

// globMatch matches IAM's wildcards: * any run of characters (across
// slashes and colons, unlike path.Match), ? any one character.
func globMatch(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	// Turn the IAM pattern into a path.Match one over a string without
	// slashes: path.Match's * stops at '/', so both sides map '/' to a
	// byte that cannot occur in an ARN, and '[' / '\\' are escaped.
	var b strings.Builder
	for _, c := range []byte(pattern) {
		switch c {
		case '/':
			b.WriteByte(0)
		case '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	ok, _ := path.Match(b.String(), strings.ReplaceAll(s, "/", "\x00"))
	return ok
}

// policyTargets are the request members that name what a call acts on.
type policyTargets struct {
	StreamName    *string `json:"StreamName" cbor:"StreamName"`
	StreamARN     *string `json:"StreamARN" cbor:"StreamARN"`
	ConsumerARN   *string `json:"ConsumerARN" cbor:"ConsumerARN"`
	ResourceARN   *string `json:"ResourceARN" cbor:"ResourceARN"`
	ShardIterator *string `json:"ShardIterator" cbor:"ShardIterator"`
}

// target resolves what a call acts on: the stream, and the consumer when
// the call names one by its ARN. ok is false when the call names no
// stream or names different ones.
func (h *Handler) target(t *policyTargets) (stream, consumer string, ok bool) {
	var names []string
	if t.StreamName != nil {
		names = append(names, *t.StreamName)
	}
	if t.StreamARN != nil {
		s, ok := h.parseStreamARN(*t.StreamARN)
		if !ok {
			return "", "", false
		}
		names = append(names, s)
	}
	for _, arn := range []*string{t.ConsumerARN, t.ResourceARN} {
		if arn == nil {
			continue
		}
		if s, c, _, ok := h.parseConsumerARN(*arn); ok {
			if consumer != "" && consumer != c {
				return "", "", false
			}
			names, consumer = append(names, s), c
			continue
		}
		s, ok := h.parseStreamARN(*arn)
		if !ok {
			return "", "", false
		}
		names = append(names, s)
	}
	if t.ShardIterator != nil {
		p, ok := h.unseal(*t.ShardIterator)
		if !ok || len(p) < iteratorHead || p[0] != tokIterator {
			return "", "", false
		}
		names = append(names, string(p[iteratorHead:]))
	}
	if len(names) == 0 {
		return "", "", false
	}
	for _, n := range names[1:] {
		if n != names[0] {
			return "", "", false
		}
	}
	return names[0], consumer, true
}

// authorize enforces the stream's (or consumer's) resource policy and the
// caller's deferred refusal for a call that acts on stream (and consumer;
// "" for the stream itself). known is false when the call names no single
// stream: then only the caller's grants decide.
func (h *Handler) authorize(c *Caller, op, stream, consumer string, known bool) error {
	if c == nil {
		return nil
	}
	refuse := func() error {
		if c.Refusal == "" {
			return nil
		}
		c.refused()
		return &apiError{Type: excAccessDenied, Status: http.StatusBadRequest, Message: c.Refusal}
	}
	if !known || c.Admin && policyOps[op] {
		return refuse()
	}
	var text, resource string
	if consumer == "" {
		f, err := h.facts(stream)
		if err != nil {
			return refuse()
		}
		text, resource = f.policy, h.streamARN(stream)
	} else {
		info, err := h.store.DescribeStream(stream)
		if err != nil {
			return refuse()
		}
		text = info.Attrs[attrPolicy+".consumer."+consumer]
		for _, cr := range consumersOf(&info) {
			if cr.Name == consumer {
				resource = h.consumerARN(stream, cr)
			}
		}
		if resource == "" {
			return refuse()
		}
	}
	if text == "" {
		return refuse()
	}
	doc, err := parsePolicy(text, false)
	if err != nil {
		// A stored policy that no longer parses cannot allow anything.
		h.opts.Logger.Error("kinesis: stored resource policy unreadable; it allows nothing", "resource", resource, "err", err)
		return refuse()
	}
	who := h.principalARN(c)
	switch doc.evaluate(who, h.opts.AccountID, "kinesis:"+op, resource) {
	case denied:
		c.refused()
		return &apiError{Type: excAccessDenied, Status: http.StatusBadRequest,
			Message: "User: " + who + " is not authorized to perform: kinesis:" + op + " on resource: " + resource + " with an explicit deny in a resource-based policy"}
	case allowed:
		return nil
	}
	return refuse()
}

// policyOps manage resource policies; an admin may always call them.
var policyOps = map[string]bool{"PutResourcePolicy": true, "GetResourcePolicy": true, "DeleteResourcePolicy": true}

// authorizeRequest is authorize for a call whose targets are read from its
// body (every operation but PutRecords, which resolves its stream itself).
func (h *Handler) authorizeRequest(r *request, op string) error {
	c := callerFrom(r.ctx)
	if c == nil {
		return nil
	}
	var t policyTargets
	if decode(r.codec, r.body, &t) != nil {
		return h.authorize(c, op, "", "", false)
	}
	s, cons, ok := h.target(&t)
	return h.authorize(c, op, s, cons, ok)
}
