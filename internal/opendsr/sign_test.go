package opendsr_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/opendsr"
)

func selfSignedCert(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignVerifyRoundTrip(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := selfSignedCert(t, key)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEMs := map[string][]byte{
		"pkcs1": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"pkcs8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	}
	body := []byte(`{"controller_id":"acme","request_status":"completed"}`)
	for name, keyPEM := range keyPEMs {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := opendsr.LoadSigner(writeFile(t, dir, "key.pem", keyPEM), writeFile(t, dir, "cert.pem", certPEM))
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.Sign(body)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := base64.StdEncoding.DecodeString(sig); err != nil {
				t.Fatalf("signature is not standard base64: %v", err)
			}
			if err := opendsr.Verify(s.CertificatePEM(), body, sig); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			tampered := append([]byte(nil), body...)
			tampered[5] ^= 1
			if err := opendsr.Verify(s.CertificatePEM(), tampered, sig); !errors.Is(err, opendsr.ErrBadSignature) {
				t.Fatalf("tampered body: %v", err)
			}
			if err := opendsr.Verify(s.CertificatePEM(), body, "not base64!"); !errors.Is(err, opendsr.ErrBadSignature) {
				t.Fatalf("garbage signature: %v", err)
			}

			h := http.Header{}
			if err := s.SetHeaders(h, "dsr.example.com", body); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{opendsr.HeaderProcessorDomain, opendsr.HeaderLegacyProcessorDomain} {
				if h.Get(name) != "dsr.example.com" {
					t.Errorf("%s = %q", name, h.Get(name))
				}
			}
			for _, name := range []string{opendsr.HeaderSignature, opendsr.HeaderLegacySignature} {
				if err := opendsr.Verify(s.CertificatePEM(), body, h.Get(name)); err != nil {
					t.Errorf("%s does not verify: %v", name, err)
				}
			}
		})
	}
}

func TestNewSignerMismatch(t *testing.T) {
	keyA, _ := rsa.GenerateKey(rand.Reader, 2048)
	keyB, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, err := opendsr.NewSigner(keyA, selfSignedCert(t, keyB))
	if !errors.Is(err, opendsr.ErrKeyCertMismatch) {
		t.Fatalf("got %v", err)
	}

	dir := t.TempDir()
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(keyA)})
	_, err = opendsr.LoadSigner(writeFile(t, dir, "key.pem", keyPEM), writeFile(t, dir, "cert.pem", selfSignedCert(t, keyB)))
	if !errors.Is(err, opendsr.ErrKeyCertMismatch) {
		t.Fatalf("LoadSigner: %v", err)
	}
	// The error never carries key material.
	keyB64 := strings.Split(string(keyPEM), "\n")[1]
	if strings.Contains(err.Error(), keyB64[:20]) || strings.Contains(err.Error(), "PRIVATE") {
		t.Fatalf("error leaks key material: %v", err)
	}
}

func TestLoadSignerRejects(t *testing.T) {
	dir := t.TempDir()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	certPath := writeFile(t, dir, "cert.pem", selfSignedCert(t, key))
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ecKey)

	cases := map[string][]byte{
		"encrypted pkcs8": pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"encrypted pkcs1": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}}),
		"ecdsa pkcs8":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecPKCS8}),
		"not pem":         []byte("hello"),
		"garbage pkcs1":   pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("garbage")}),
	}
	for name, keyPEM := range cases {
		if _, err := opendsr.LoadSigner(writeFile(t, dir, "k.pem", keyPEM), certPath); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := opendsr.LoadSigner(filepath.Join(dir, "missing.pem"), certPath); err == nil {
		t.Error("missing key file accepted")
	}
	goodKey := writeFile(t, dir, "good.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	if _, err := opendsr.LoadSigner(goodKey, writeFile(t, dir, "nocert.pem", []byte("no cert here"))); err == nil {
		t.Error("file without certificate accepted")
	}
}

func TestCertificatePEMNeverHoldsKey(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	combined := append(append([]byte(nil), keyPEM...), selfSignedCert(t, key)...)
	dir := t.TempDir()
	p := writeFile(t, dir, "both.pem", combined)
	s, err := opendsr.LoadSigner(p, p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(s.CertificatePEM()), "PRIVATE KEY") {
		t.Fatal("CertificatePEM publishes the private key")
	}
	if !strings.HasPrefix(string(s.CertificatePEM()), "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("CertificatePEM = %q", s.CertificatePEM())
	}
}
