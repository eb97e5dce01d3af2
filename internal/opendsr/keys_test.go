package opendsr_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/opendsr"
)

func TestGenerateSelfSigned(t *testing.T) {
	keyPEM, certPEM, err := opendsr.GenerateSelfSigned("dsr.example.com", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		t.Fatalf("key is not PKCS#8 PEM")
	}
	key, err := opendsr.ParsePrivateKeyPEM(keyPEM)
	if err != nil || key.N.BitLen() != 2048 {
		t.Fatalf("key: %v", err)
	}
	cb, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "dsr.example.com" || len(cert.DNSNames) != 1 || cert.DNSNames[0] != "dsr.example.com" {
		t.Errorf("CN %q SANs %v", cert.Subject.CommonName, cert.DNSNames)
	}
	if d := time.Until(cert.NotAfter); d < 47*time.Hour || d > 49*time.Hour {
		t.Errorf("NotAfter in %v", d)
	}
	if _, err := opendsr.NewSigner(key, certPEM); err != nil {
		t.Fatalf("generated pair does not match: %v", err)
	}
	if _, _, err := opendsr.GenerateSelfSigned("", time.Hour); err == nil {
		t.Error("empty common name accepted")
	}
}

func TestWriteKeyPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".data")
	keyPath, certPath, err := opendsr.WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(keyPath) != "signing-key.pem" || filepath.Base(certPath) != "signing-cert.pem" {
		t.Errorf("paths %s %s", keyPath, certPath)
	}
	for path, want := range map[string]os.FileMode{keyPath: 0o600, certPath: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// The umask may remove bits, never add them.
		if fi.Mode().Perm()&^want != 0 || fi.Mode().Perm()&0o600 != 0o600 {
			t.Errorf("%s mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	if _, err := opendsr.LoadSigner(keyPath, certPath); err != nil {
		t.Fatalf("written pair does not load: %v", err)
	}

	before, _ := os.ReadFile(keyPath)
	k2, c2, err := opendsr.WriteKeyPair(dir)
	if err != nil || k2 != keyPath || c2 != certPath {
		t.Fatalf("second call: %s %s %v", k2, c2, err)
	}
	after, _ := os.ReadFile(keyPath)
	if !bytes.Equal(before, after) {
		t.Fatal("existing key was overwritten")
	}

	if err := os.Remove(certPath); err != nil {
		t.Fatal(err)
	}
	if _, _, err := opendsr.WriteKeyPair(dir); err == nil {
		t.Fatal("a lone key file was accepted")
	}
	after, _ = os.ReadFile(keyPath)
	if !bytes.Equal(before, after) {
		t.Fatal("lone key file was overwritten")
	}
}
