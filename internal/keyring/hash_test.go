package keyring_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/dsrflow/dsrflow/internal/keyring"
)

func TestHashNeedsTheKey(t *testing.T) {
	spec, err := keyring.Generate("k1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := keyring.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	secret := "alice@example.com"
	stored := r.Hash("identity", secret)
	if !keyring.IsHash(stored) || !strings.HasPrefix(stored, "hmac:k1:") {
		t.Fatalf("hash %q: want hmac:k1:<hex>", stored)
	}
	if strings.Contains(stored, secret) {
		t.Fatal("hash holds the value")
	}
	if r.Hash("identity", secret) != stored {
		t.Fatal("hash is not deterministic")
	}
	// An attacker holding the ledger but not the key tries a dictionary with
	// every unkeyed construction the value could have been hashed with.
	dictionary := []string{"bob@example.com", secret, "carol@example.com"}
	for _, cand := range dictionary {
		for _, form := range []string{cand, "identity" + cand, "identity\x00" + cand, "email:raw:" + cand} {
			sum := sha256.Sum256([]byte(form))
			if strings.HasSuffix(stored, hex.EncodeToString(sum[:])) {
				t.Fatalf("unkeyed SHA-256 of %q reproduces the stored hash", form)
			}
		}
	}
	// Another key (another installation) gives another hash.
	spec2, _ := keyring.Generate("k1")
	other, _ := keyring.Parse(spec2)
	if other.Hash("identity", secret) == stored {
		t.Fatal("a different key reproduced the hash")
	}
	// Purposes are separated.
	if r.Hash("callback-url", secret) == stored {
		t.Fatal("purposes are not separated")
	}
}

func TestHashesAfterRotation(t *testing.T) {
	old, _ := keyring.Generate("old")
	before, _ := keyring.Parse(old)
	stored := before.Hash("identity", "c-1")
	nw, _ := keyring.Generate("new")
	after, err := keyring.Parse(nw + "," + old)
	if err != nil {
		t.Fatal(err)
	}
	if after.Hash("identity", "c-1") == stored {
		t.Fatal("the active key changed but the hash did not")
	}
	hs := after.Hashes("identity", "c-1")
	if len(hs) != 2 || !strings.HasPrefix(hs[0], "hmac:new:") || hs[1] != stored {
		t.Fatalf("Hashes = %v, want the new key's hash then the stored one", hs)
	}
}

func TestIsHash(t *testing.T) {
	for s, want := range map[string]bool{
		"hmac:k1:" + strings.Repeat("ab", 32): true,
		"hmac:k1:" + strings.Repeat("ab", 31): false,
		"hmac::" + strings.Repeat("ab", 32):   false,
		strings.Repeat("ab", 32):              false,
		"hmac:k1:" + strings.Repeat("zz", 32): false,
	} {
		if keyring.IsHash(s) != want {
			t.Errorf("IsHash(%q) = %v, want %v", s, !want, want)
		}
	}
}
