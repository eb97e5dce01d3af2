package opendsr

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names written by WriteKeyPair.
const (
	SigningKeyFile  = "signing-key.pem"
	SigningCertFile = "signing-cert.pem"
)

// DefaultCertValidity is the validity of certificates made by WriteKeyPair,
// and of GenerateSelfSigned when given no positive duration.
const DefaultCertValidity = 365 * 24 * time.Hour

// GenerateSelfSigned makes an RSA 2048 key (PKCS#8 PEM) and a self-signed
// certificate for commonName (also its DNS SAN, or IP SAN for an IP address)
// valid from five minutes ago for validFor. Self-signed certificates are
// for local use only; production certificates come from a CA.
func GenerateSelfSigned(commonName string, validFor time.Duration) (keyPEM, certPEM []byte, err error) {
	if commonName == "" {
		return nil, nil, errors.New("opendsr: a common name is required")
	}
	if validFor <= 0 {
		validFor = DefaultCertValidity
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("opendsr: generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("opendsr: generating serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"dsrflow"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(commonName); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{commonName}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("opendsr: creating certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("opendsr: encoding key: %w", err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return keyPEM, certPEM, nil
}

// WriteKeyPair makes a self-signed pair for "localhost" in dir (created with
// mode 0700 if needed) as signing-key.pem (0600) and signing-cert.pem
// (0644). Existing files are never overwritten: when both exist their paths
// are returned as they are; when only one exists it is an error.
func WriteKeyPair(dir string) (keyPath, certPath string, err error) {
	keyPath = filepath.Join(dir, SigningKeyFile)
	certPath = filepath.Join(dir, SigningCertFile)
	keyExists, err := exists(keyPath)
	if err != nil {
		return "", "", err
	}
	certExists, err := exists(certPath)
	if err != nil {
		return "", "", err
	}
	switch {
	case keyExists && certExists:
		return keyPath, certPath, nil
	case keyExists || certExists:
		return "", "", fmt.Errorf("opendsr: only one of %s and %s exists; remove it or supply the other", keyPath, certPath)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("opendsr: creating key directory: %w", err)
	}
	keyPEM, certPEM, err := GenerateSelfSigned("localhost", DefaultCertValidity)
	if err != nil {
		return "", "", err
	}
	if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(certPath, certPEM, 0o644); err != nil {
		_ = os.Remove(keyPath)
		return "", "", err
	}
	return keyPath, certPath, nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("opendsr: %w", err)
	}
}

// writeNew creates path exclusively (never replacing a file) with perm.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("opendsr: creating %s: %w", path, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("opendsr: writing %s: %w", path, err)
	}
	return nil
}
