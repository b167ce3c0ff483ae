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
	// the signed header names (lower case, sorted as sent) and the signature.
	AccessKeyID   string
	Date          string
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string

	signed [8]string // SignedHeaders' usual room, allocated with the rest
}

// ParseAuthorization reads an Authorization header value. A SigV4 header
// that is not complete yields an *AWSError of type
// IncompleteSignatureException with AWS's wording; any other malformed
// header yields ErrBadCredentials.
func ParseAuthorization(h string) (*Authorization, error) {
	scheme, rest, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, SchemeBearer):
		tok := strings.TrimSpace(rest)
		if tok == "" || strings.ContainsAny(tok, " \t,") {
			return nil, ErrBadCredentials
		}
		return &Authorization{Scheme: SchemeBearer, Token: tok}, nil
	case scheme == SchemeSigV4:
		return parseSigV4(h, rest)
	}
	if strings.HasPrefix(h, "AWS") {
		return nil, incomplete("Authorization header requires AWS4-HMAC-SHA256 as the signing algorithm. Authorization=" + h)
	}
	return nil, ErrBadCredentials
}

func parseSigV4(full, rest string) (*Authorization, error) {
	a := &Authorization{Scheme: SchemeSigV4}
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "Credential":
			cred, haveCred = v, true
		case "SignedHeaders":
			signed, haveSigned = v, true
		case "Signature":
			sig, haveSig = v, true
		}
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
		return nil, incomplete(strings.Join(missing, " ") + " Authorization=" + full)
	}
	var parts [5]string
	n := strings.Count(cred, "/") + 1
	scope := cred
	for i := 0; i < len(parts) && n == 5; i++ {
		parts[i], scope, _ = strings.Cut(scope, "/")
	}
	if n != 5 || parts[4] != "aws4_request" || parts[0] == "" {
		return nil, incomplete("Credential should be scoped to a valid region, not '" + parts[2] + "'. Authorization=" + full)
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]
	if len(a.Date) != 8 || strings.Trim(a.Date, "0123456789") != "" {
		return nil, incomplete("Date in Credential scope is not a valid YYYYMMDD date. Authorization=" + full)
	}
	if a.Region == "" || a.Service == "" {
		return nil, incomplete("Credential should be scoped to a valid region and service. Authorization=" + full)
	}
	if signed == "" {
		return nil, incomplete("Authorization header requires 'SignedHeaders' parameter. Authorization=" + full)
	}
	a.SignedHeaders = a.signed[:0]
	for h := range strings.SplitSeq(signed, ";") {
		if !lowerHeaderName(h) {
			return nil, incomplete("SignedHeaders must be lower-case header names separated by ';'. Authorization=" + full)
		}
		a.SignedHeaders = append(a.SignedHeaders, h)
	}
	if len(sig) != 64 || strings.Trim(sig, "0123456789abcdef") != "" {
		return nil, incomplete("Signature must be 64 lower-case hex digits. Authorization=" + full)
	}
	a.Signature = sig
	return a, nil
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
