package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// macInfo is the HKDF info that derives a key's HMAC key from it.
const macInfo = "dsrflow/keyring/hmac/v1"

// hashPrefix starts every keyed hash: "hmac:<key id>:<64 hex digits>".
const hashPrefix = "hmac:"

// Hash returns the keyed hash of value for purpose with the active key:
// "hmac:<key id>:<hex HMAC-SHA-256(purpose || 0x00 || value)>". Without the
// key, a dictionary of candidate values cannot reproduce it, unlike a plain
// SHA-256. purpose separates uses (e.g. "identity", "callback-url"), so a
// hash made for one cannot be matched against another.
func (r *Ring) Hash(purpose, value string) string {
	return r.active().hash(purpose, value)
}

// Hashes returns value's keyed hash under every key of the ring, the active
// key first: to look up a value stored under a key that has since rotated.
func (r *Ring) Hashes(purpose, value string) []string {
	out := make([]string, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.hash(purpose, value)
	}
	return out
}

// IsHash reports whether s has the form of a keyed hash made by Hash.
func IsHash(s string) bool {
	rest, ok := strings.CutPrefix(s, hashPrefix)
	if !ok {
		return false
	}
	id, sum, ok := strings.Cut(rest, ":")
	if !ok || !validID(id) || len(sum) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(sum)
	return err == nil
}

// hash is Hash with this key.
func (k *key) hash(purpose, value string) string {
	m := hmac.New(sha256.New, k.mac)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hashPrefix + k.id + ":" + hex.EncodeToString(m.Sum(nil))
}
