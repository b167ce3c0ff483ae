// Package auth says who is calling Runnel and what they may do.
//
// It owns the token store (DATA/auth: tokens.json holds each token's name,
// role, stream grants and the SHA-256 of its secret; auth.key is the key
// AWS secret access keys are derived from), the roles and grants, parsing
// of the Authorization header (Bearer and AWS SigV4), SigV4 verification
// (by recomputing the signature with aws-sdk-go-v2's signer) and the web
// UI's server-side sessions. Which route needs which role is decided by
// the web package's rule table, not here.
package auth
