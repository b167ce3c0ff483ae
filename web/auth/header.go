package auth

import (
	"strings"
)

// Authorization schemes.
const (
	SchemeBearer = "Bearer"
	SchemeSigV4  = "AWS4-HMAC-SHA256"
)

// Authorization is a parsed Authorization header.
type Authorization struct {
	// Scheme is SchemeBearer or SchemeSigV4.
	Scheme string
	// Token is the bearer token.
	Token string
	// SigV4: the credential scope (AccessKeyID/Date/Region/Service/aws4_request),
	// the signed header names as sent (lower case, separated by ';') and
	// the signature.
	AccessKeyID   string
	Date          string
	Region        string
	Service       string
	SignedHeaders string
	Signature     string
}

// ParseAuthorization reads an Authorization header value. A SigV4 header
// that is not complete, or names a parameter twice, yields an *AWSError of type
// IncompleteSignatureException with AWS's wording; any other malformed
// header yields ErrBadCredentials.
func ParseAuthorization(h string) (*Authorization, error) {
	a := new(Authorization)
	if err := a.Parse(h); err != nil {
		return nil, err
	}
	return a, nil
}

// Parse is ParseAuthorization into a, which a server's request path can
// keep on its stack.
func (a *Authorization) Parse(h string) error {
	*a = Authorization{}
	scheme, rest, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, SchemeBearer):
		tok := strings.TrimSpace(rest)
		if tok == "" || strings.ContainsAny(tok, " \t,") {
			return ErrBadCredentials
		}
		a.Scheme, a.Token = SchemeBearer, tok
		return nil
	case scheme == SchemeSigV4:
		return a.parseSigV4(h, rest)
	}
	if strings.HasPrefix(h, "AWS") {
		return incomplete("Authorization header requires AWS4-HMAC-SHA256 as the signing algorithm. Authorization=" + h)
	}
	return ErrBadCredentials
}

func (a *Authorization) parseSigV4(full, rest string) error {
	a.Scheme = SchemeSigV4
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	for more := true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		var have *bool
		switch k {
		case "Credential":
			cred, have = v, &haveCred
		case "SignedHeaders":
			signed, have = v, &haveSigned
		case "Signature":
			sig, have = v, &haveSig
		default:
			continue
		}
		if *have {
			// Two values, one of which a later reader might take for the
			// one that was checked.
			return incomplete("Authorization header has more than one '" + k + "' parameter. Authorization=" + full)
		}
		*have = true
	}
	var missing []string
	if !haveCred {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if !haveSig {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if !haveSigned {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if len(missing) > 0 {
		return incomplete(strings.Join(missing, " ") + " Authorization=" + full)
	}
	var parts [5]string
	n := strings.Count(cred, "/") + 1
	scope := cred
	for i := 0; i < len(parts) && n == 5; i++ {
		parts[i], scope, _ = strings.Cut(scope, "/")
	}
	if n != 5 || parts[4] != "aws4_request" || parts[0] == "" {
		return incomplete("Credential should be scoped to a valid region, not '" + parts[2] + "'. Authorization=" + full)
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]
	if len(a.Date) != 8 || strings.Trim(a.Date, "0123456789") != "" {
		return incomplete("Date in Credential scope is not a valid YYYYMMDD date. Authorization=" + full)
	}
	if a.Region == "" || a.Service == "" {
		return incomplete("Credential should be scoped to a valid region and service. Authorization=" + full)
	}
	if signed == "" {
		return incomplete("Authorization header requires 'SignedHeaders' parameter. Authorization=" + full)
	}
	a.SignedHeaders = signed
	for more, rest := true, signed; more; {
		var h string
		h, rest, more = strings.Cut(rest, ";")
		if !lowerHeaderName(h) {
			return incomplete("SignedHeaders must be lower-case header names separated by ';'. Authorization=" + full)
		}
	}
	if len(sig) != 64 || strings.Trim(sig, "0123456789abcdef") != "" {
		return incomplete("Signature must be 64 lower-case hex digits. Authorization=" + full)
	}
	a.Signature = sig
	return nil
}

// lowerHeaderName says whether h is a non-empty header name without upper
// case letters, blanks or colons.
func lowerHeaderName(h string) bool {
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case 'A' <= c && c <= 'Z', c == ' ', c == '\t', c == ':':
			return false
		}
	}
	return h != "" && h == strings.ToLower(h)
}
