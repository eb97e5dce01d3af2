package keyring

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
)

func TestSealOpen(t *testing.T) {
	r := newRing(t, "k1")
	sealedForm := regexp.MustCompile(`^enc:v1:k1:[A-Za-z0-9_-]+$`)
	for _, plain := range []string{"", "x", "https://dsr.example.com/results/abc?token=xyz", email, "ünïcødé ✓", strings.Repeat("a", 5000)} {
		sealed, err := r.Seal(plain)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if !sealedForm.MatchString(sealed) {
			t.Errorf("Seal = %q, want enc:v1:k1:<base64url>", sealed)
		}
		if len(plain) > 4 && strings.Contains(sealed, plain) { // a short plaintext may appear by chance
			t.Errorf("sealed value %q holds the plaintext", sealed)
		}
		if !IsSealed(sealed) {
			t.Errorf("IsSealed(%q) = false", sealed)
		}
		got, err := r.Open(sealed)
		if err != nil || got != plain {
			t.Errorf("Open(Seal(%q)) = %q, %v", plain, got, err)
		}
	}
	a, _ := r.Seal(email)
	b, _ := r.Seal(email)
	if a == b {
		t.Error("sealing twice gives the same value")
	}
}

func TestOpenPassesPlainValues(t *testing.T) {
	r := newRing(t, "k1")
	for _, v := range []string{"", "https://dsr.example.com/results/abc", "encrypted", "ENC:v1:k1:abc", "enc", " enc:v1:k1:x"} {
		got, err := r.Open(v)
		if err != nil || got != v {
			t.Errorf("Open(%q) = %q, %v; want it unchanged", v, got, err)
		}
		if IsSealed(v) {
			t.Errorf("IsSealed(%q) = true", v)
		}
	}
}

func TestOpenTampered(t *testing.T) {
	e1, _ := genKey(t, "k1")
	e2, _ := genKey(t, "k2")
	r := mustParse(t, e1+","+e2)
	sealed, err := r.Seal(email)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(sealed, "enc:v1:k1:")
	flip := func(i int) string {
		b := []byte(body)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return "enc:v1:k1:" + string(b)
	}
	corrupt := []string{
		flip(0), flip(len(body) / 2), flip(len(body) - 2),
		"enc:v1:k1:" + body[:len(body)-4],
		"enc:v1:k1:" + body + "AAAA",
		"enc:v1:k1:",
		"enc:v1:k1:" + body + "=",
		"enc:v1:k1:" + body[:10] + "+/" + body[12:],
		"enc:v1:k2:" + body, // another key of the ring
		"enc:v1:k1",
		"enc:v2:k1:" + body,
		"enc:",
	}
	for _, v := range corrupt {
		if got, err := r.Open(v); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Open(%q) = %q, %v; want ErrCorrupt", v, got, err)
		}
	}
	if _, err := r.Open("enc:v1:gone:" + body); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"gone"`) {
		t.Errorf("unknown key: %v", err)
	}

	// A payload ciphertext of the same key is not a sealed value.
	enc, err := r.Codec().Encode([]*commonpb.Payload{{Data: []byte(email)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open("enc:v1:k1:" + base64.RawURLEncoding.EncodeToString(enc[0].Data)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("payload ciphertext opened as a sealed value: %v", err)
	}
}

func TestSealRotation(t *testing.T) {
	oldEntry, _ := genKey(t, "old")
	newEntry, _ := genKey(t, "new")
	sealed, err := mustParse(t, oldEntry).Seal(email)
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustParse(t, newEntry+","+oldEntry)
	if got, err := rotated.Open(sealed); err != nil || got != email {
		t.Errorf("rotated ring: Open = %q, %v", got, err)
	}
	if s, _ := rotated.Seal(email); !strings.HasPrefix(s, "enc:v1:new:") {
		t.Errorf("rotated ring seals with %q", s[:12])
	}
}
