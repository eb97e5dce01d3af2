package opendsr

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Header names carried by every signed response and callback. The legacy
// X-OpenGDPR-* pair carries the same values for older controllers.
const (
	HeaderProcessorDomain       = "X-OpenDSR-Processor-Domain"
	HeaderSignature             = "X-OpenDSR-Signature"
	HeaderLegacyProcessorDomain = "X-OpenGDPR-Processor-Domain"
	HeaderLegacySignature       = "X-OpenGDPR-Signature"
)

// Sentinel errors of signing and verification.
var (
	// ErrKeyCertMismatch means the certificate does not hold the signing key's public key.
	ErrKeyCertMismatch = errors.New("opendsr: the certificate's public key does not match the signing key")
	// ErrBadSignature means a signature does not verify.
	ErrBadSignature = errors.New("opendsr: signature does not verify")
)

// Signer signs bodies with the processor's RSA key and publishes the
// matching certificate.
type Signer struct {
	key     *rsa.PrivateKey
	certPEM []byte
}

// LoadSigner reads an unencrypted PKCS#8 or PKCS#1 RSA private key and a
// certificate from PEM files and checks that they match. Errors name the
// files but never print key material.
func LoadSigner(keyPEMFile, certPEMFile string) (*Signer, error) {
	keyPEM, err := os.ReadFile(keyPEMFile)
	if err != nil {
		return nil, fmt.Errorf("opendsr: reading signing key: %w", err)
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", keyPEMFile, err)
	}
	certPEM, err := os.ReadFile(certPEMFile)
	if err != nil {
		return nil, fmt.Errorf("opendsr: reading signing certificate: %w", err)
	}
	s, err := NewSigner(key, certPEM)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %s: %w", certPEMFile, err)
	}
	return s, nil
}

// NewSigner builds a Signer from a key and PEM certificate(s). The first
// certificate must hold key's public key; any further certificates (a chain)
// are published with it. Blocks other than CERTIFICATE are dropped, so a
// file holding both key and certificate never publishes the key.
func NewSigner(key *rsa.PrivateKey, certPEM []byte) (*Signer, error) {
	if key == nil {
		return nil, errors.New("opendsr: no signing key")
	}
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := certs[0].PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, ErrKeyCertMismatch
	}
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return &Signer{key: key, certPEM: out}, nil
}

// Sign returns base64(RSA PKCS#1 v1.5 signature over SHA-256(body)), the
// value of X-OpenDSR-Signature.
func (s *Signer) Sign(body []byte) (string, error) {
	digest := sha256.Sum256(body)
	return s.SignDigest(digest[:])
}

// SignDigest is Sign for a body whose SHA-256 was computed while streaming it.
func (s *Signer) SignDigest(sha256Digest []byte) (string, error) {
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sha256Digest)
	if err != nil {
		return "", fmt.Errorf("opendsr: signing: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// SetHeaders signs body and sets the processor domain and signature headers
// on h, both the X-OpenDSR-* pair and the legacy X-OpenGDPR-* pair.
func (s *Signer) SetHeaders(h http.Header, processorDomain string, body []byte) error {
	sig, err := s.Sign(body)
	if err != nil {
		return err
	}
	SetSignatureHeaders(h, processorDomain, sig)
	return nil
}

// SetSignatureHeaders sets both pairs of processor domain and signature headers.
func SetSignatureHeaders(h http.Header, processorDomain, sig string) {
	h.Set(HeaderProcessorDomain, processorDomain)
	h.Set(HeaderSignature, sig)
	h.Set(HeaderLegacyProcessorDomain, processorDomain)
	h.Set(HeaderLegacySignature, sig)
}

// CertificatePEM returns the PEM certificate(s) that verify this Signer's
// signatures, as served at /v1/cert.pem. The caller must not modify it.
func (s *Signer) CertificatePEM() []byte { return s.certPEM }

// Verify checks a base64 X-OpenDSR-Signature over body against the first
// certificate in certPEM. It does not check the certificate's validity
// period or chain. A signature that does not verify gives an error wrapping
// ErrBadSignature.
func Verify(certPEM []byte, body []byte, signature string) error {
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return err
	}
	pub, ok := certs[0].PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("opendsr: certificate does not hold an RSA public key")
	}
	signature = strings.TrimSpace(signature)
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		if sig, err = base64.RawStdEncoding.DecodeString(signature); err != nil {
			return fmt.Errorf("%w: not base64", ErrBadSignature)
		}
	}
	digest := sha256.Sum256(body)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return nil
}

// ParsePrivateKeyPEM reads the first private key block of keyPEM: an
// unencrypted PKCS#8 ("PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY") RSA key.
// Encrypted keys and other algorithms are refused.
func ParsePrivateKeyPEM(keyPEM []byte) (*rsa.PrivateKey, error) {
	rest := keyPEM
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("opendsr: no PEM private key found")
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("opendsr: encrypted private keys are not supported; decrypt the key first")
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("opendsr: parsing PKCS#1 key: %w", err)
			}
			return key, nil
		case "PRIVATE KEY":
			parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("opendsr: parsing PKCS#8 key: %w", err)
			}
			key, ok := parsed.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("opendsr: the key is %T, an RSA key is required", parsed)
			}
			return key, nil
		case "EC PRIVATE KEY", "OPENSSH PRIVATE KEY":
			return nil, fmt.Errorf("opendsr: %s blocks are not supported, an RSA key is required", block.Type)
		}
	}
}

func parseCertificates(certPEM []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := certPEM
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("opendsr: parsing certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("opendsr: no PEM certificate found")
	}
	return certs, nil
}
