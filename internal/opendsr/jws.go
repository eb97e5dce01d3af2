package opendsr

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// ErrBadJWS means a JWS is malformed, altered, or not signed by the
// certificate's key.
var ErrBadJWS = errors.New("opendsr: JWS does not verify")

// SignJWS signs payload with the processor key as a JWS (RS256) in the
// flattened JSON serialization {"payload","protected","signature"}. The
// protected header names the signing certificate by its SHA-256 thumbprint
// (x5t#S256), so a controller holding several certificates knows which one
// verifies it.
func (s *Signer) SignJWS(payload []byte) ([]byte, error) {
	certs, err := parseCertificates(s.certPEM)
	if err != nil {
		return nil, err
	}
	thumb := sha256.Sum256(certs[0].Raw)
	opts := (&jose.SignerOptions{}).
		WithHeader("x5t#S256", base64.RawURLEncoding.EncodeToString(thumb[:])).
		WithContentType("json")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.key}, opts)
	if err != nil {
		return nil, fmt.Errorf("opendsr: JWS signer: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("opendsr: signing JWS: %w", err)
	}
	out := obj.FullSerialize()
	if out == "" {
		return nil, errors.New("opendsr: serializing JWS failed")
	}
	return []byte(out), nil
}

// VerifyJWS checks a flattened JSON JWS against the first certificate in
// certPEM and returns its payload. It is strict, so that any change to the
// document fails: the members must be exactly "protected", "payload" and
// "signature" (spelled so), each canonical unpadded base64url, and the
// algorithm RS256. Errors wrap ErrBadJWS.
func VerifyJWS(certPEM, doc []byte) ([]byte, error) {
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := certs[0].PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("opendsr: certificate does not hold an RSA public key")
	}
	var members map[string]string
	if err := json.Unmarshal(doc, &members); err != nil {
		return nil, fmt.Errorf("%w: not a flattened JSON JWS: %w", ErrBadJWS, err)
	}
	parts := make([]string, 0, 3)
	for _, name := range []string{"protected", "payload", "signature"} {
		v, ok := members[name]
		if !ok {
			return nil, fmt.Errorf("%w: no %q member", ErrBadJWS, name)
		}
		if raw, err := base64.RawURLEncoding.Strict().DecodeString(v); err != nil || base64.RawURLEncoding.EncodeToString(raw) != v {
			return nil, fmt.Errorf("%w: %q is not canonical base64url", ErrBadJWS, name)
		}
		parts = append(parts, v)
	}
	if len(members) != 3 {
		return nil, fmt.Errorf("%w: unexpected members", ErrBadJWS)
	}
	obj, err := jose.ParseSignedCompact(parts[0]+"."+parts[1]+"."+parts[2], []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJWS, err)
	}
	payload, err := obj.Verify(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJWS, err)
	}
	return payload, nil
}
