package keyring

import (
	"encoding/base64"
	"fmt"
	"strings"
)

const (
	// sealedPrefix marks a sealed value; Open passes other values through.
	sealedPrefix = "enc:"
	// sealedV1 is the prefix of the current format: "enc:v1:<id>:<base64url>".
	sealedV1 = sealedPrefix + "v1:"
)

// sealAD is the additional data of sealed strings.
var sealAD = []byte("dsrflow/keyring/seal/v1")

var sealEncoding = base64.RawURLEncoding.Strict()

// Seal encrypts a small value (e.g. a results link stored in the ledger) with
// the active key into "enc:v1:<key id>:<base64url>", the base64url (no
// padding) holding a random nonce (12 bytes), the ciphertext and the tag (16
// bytes). The result is ASCII and safe in URLs, SQL and logs.
func (r *Ring) Seal(plaintext string) (string, error) {
	k := r.active()
	ct := k.random.Seal(nil, nil, []byte(plaintext), sealAD)
	return sealedV1 + k.id + ":" + sealEncoding.EncodeToString(ct), nil
}

// IsSealed reports whether s has the form of a value made by Seal (it does
// not check that s decrypts).
func IsSealed(s string) bool {
	rest, ok := strings.CutPrefix(s, sealedV1)
	if !ok {
		return false
	}
	id, b64, ok := strings.Cut(rest, ":")
	return ok && validID(id) && b64 != ""
}

// Open decrypts a value made by Seal, with the key it names. A value that
// does not start with "enc:" is returned unchanged, so values stored before
// encryption was turned on still read. It fails with ErrUnknownKey for a key
// id not in the ring and with ErrCorrupt for a malformed or tampered value.
func (r *Ring) Open(sealed string) (string, error) {
	if !strings.HasPrefix(sealed, sealedPrefix) {
		return sealed, nil
	}
	rest, ok := strings.CutPrefix(sealed, sealedV1)
	if !ok {
		return "", fmt.Errorf("keyring: open: unsupported sealed value version: %w", ErrCorrupt)
	}
	id, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("keyring: open: malformed sealed value: %w", ErrCorrupt)
	}
	k, err := r.lookup(id)
	if err != nil {
		return "", fmt.Errorf("keyring: open: %w", err)
	}
	ct, err := sealEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("keyring: open (key %q): %w: %w", id, ErrCorrupt, err)
	}
	plain, err := k.random.Open(nil, nil, ct, sealAD)
	if err != nil {
		return "", fmt.Errorf("keyring: open (key %q): %w", id, ErrCorrupt)
	}
	return string(plain), nil
}
