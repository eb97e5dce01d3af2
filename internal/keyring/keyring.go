// Package keyring encrypts dsrflow's data with a rotating ring of AES-256
// keys, so that no identity of a data subject is stored in clear: not in
// Temporal's history, not in results bundles at rest, not in the ledger.
//
// A Ring is parsed from DSR_ENCRYPTION_KEYS, a comma-separated list of
// "id:key" entries, where id matches [A-Za-z0-9_-]{1,32} and key is 32 random
// bytes in standard base64 (Generate makes one):
//
//	DSR_ENCRYPTION_KEYS="k2026b:<base64>,k2026a:<base64>"
//
// The first key is the active one: everything new is encrypted with it. Every
// key of the ring decrypts, chosen by the key id stored with the ciphertext.
//
// # Uses and formats
//
// All three formats use AES-256-GCM, each with its own additional data, so
// that a ciphertext made for one use cannot be passed off as another.
//
//   - Temporal payloads (Ring.Codec, DataConverter, FailureConverter,
//     CodecHandler): every payload, metadata and data, is serialized as
//     protobuf and sealed with a random 96-bit nonce. The encoded payload
//     has metadata encoding=binary/encrypted and encryption-key-id=<id>, and
//     data nonce(12) || ciphertext || tag(16). Decoding passes payloads that
//     are not encrypted through unchanged, so histories written before
//     encryption was turned on still read. Clients and workers need both
//     DataConverter and FailureConverter (error messages are not payloads).
//     What is not a payload stays in clear: workflow and activity ids,
//     type, signal and query names, and search attributes must never hold
//     an identity.
//   - Results bundles (Ring.WrapWriter, Ring.UnwrapReader): a seekable
//     segmented format, described at WrapWriter.
//   - Keyed hashes (Ring.Hash, Ring.Hashes): HMAC-SHA-256 under a key
//     derived from each ring key, "hmac:<id>:<hex>", for values that must be
//     matched but never read back (identity hashes, suppression lists).
//   - Small strings (Ring.Seal, Ring.Open): "enc:v1:<id>:<base64url>", the
//     base64url (unpadded) holding nonce(12) || ciphertext || tag(16). Open
//     returns values without the "enc:" prefix unchanged.
//
// # Rotating keys
//
//  1. Generate a new key (Generate) and put it first in DSR_ENCRYPTION_KEYS,
//     keeping the old keys after it: "new:<base64>,old:<base64>". Restart
//     every worker, server and the Web UI's codec endpoint: from then on
//     everything new is encrypted with the new key, and old data still
//     decrypts with the old ones. With several processes restarted one by
//     one, a process still on the old list cannot read what the new key
//     sealed (ErrUnknownKey); to avoid that, first deploy the new key second
//     in the list ("old,new"), then, once every process has it, move it
//     first.
//  2. Keep each old key until nothing sealed with it remains: every
//     workflow history that holds its payloads has passed the namespace's
//     retention period, every results bundle sealed with it has expired and
//     been purged, and no ledger value sealed with it is still needed. Then
//     remove it from the list. Removed too early, a key leaves that data
//     unreadable: workflows cannot replay, bundles cannot be served.
//
// Payload and string ciphertexts use random 96-bit nonces, so a key must
// not encrypt more than 2^32 of them, and results bundles random 64-bit nonce
// prefixes, so a key should seal well under 2^24 bundles; rotating at least
// once a year keeps a busy installation far below both. A key that may have leaked must be
// rotated at once: what it sealed is readable by whoever has it, so remove
// it as soon as that data is no longer needed.
//
// Keys never appear in what this package prints: a Ring formats as its key
// ids only, with every fmt verb, and errors name key ids or entry positions,
// never key material.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a key in bytes (AES-256).
const KeySize = 32

// maxIDLen is the longest key id.
const maxIDLen = 32

// Errors of decryption. They are wrapped: test with errors.Is.
var (
	// ErrUnknownKey: the ciphertext names a key id that is not in the ring
	// (a key removed too early, or data from another installation).
	ErrUnknownKey = errors.New("unknown encryption key id")
	// ErrCorrupt: the ciphertext is malformed, or fails authentication
	// (tampered with, truncated, reordered, or sealed with another key
	// under the same id).
	ErrCorrupt = errors.New("encrypted data is corrupt or was tampered with")
)

// Ring is a set of AES-256 keys with ids. The first key is the active one
// and encrypts; all keys decrypt. A Ring is immutable and safe for concurrent
// use. It never prints its keys: String, GoString and Format show ids only.
type Ring struct {
	keys []*key // keys[0] is active
	byID map[string]*key
}

// key is one key of a Ring. It holds the key only inside the ciphers, so no
// byte slice of key material is reachable from a Ring.
type key struct {
	id string
	// gcm takes explicit nonces (segments of results bundles).
	gcm cipher.AEAD
	// random generates a random nonce and prepends it (payloads, strings).
	random cipher.AEAD
	// mac is the HMAC-SHA-256 key of keyed hashes, derived from the key with
	// HKDF so that no byte of the encryption key itself is kept.
	mac []byte
}

// Parse parses a ring in the DSR_ENCRYPTION_KEYS format:
// "id1:<base64 32 bytes>,id2:<base64 32 bytes>", the first key being the
// active one. Spaces and newlines around entries are ignored. Key ids match
// [A-Za-z0-9_-]{1,32} and are unique. Errors identify a bad entry by its
// position (and its id when the id is valid), never by its content.
func Parse(spec string) (*Ring, error) {
	entries := strings.Split(spec, ",")
	r := &Ring{byID: make(map[string]*key, len(entries))}
	for i, entry := range entries {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			if len(entries) == 1 {
				return nil, errors.New("keyring: parse: no keys")
			}
			return nil, fmt.Errorf("keyring: parse: entry %d is empty", i+1)
		}
		id, b64, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("keyring: parse: entry %d: want id:base64-key", i+1)
		}
		if !validID(id) {
			// The "id" may be key material if the entry is garbled: do not
			// show it.
			return nil, fmt.Errorf("keyring: parse: entry %d: key id must match [A-Za-z0-9_-]{1,32}", i+1)
		}
		if _, dup := r.byID[id]; dup {
			return nil, fmt.Errorf("keyring: parse: entry %d: duplicate key id %q", i+1, id)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil {
			// base64.CorruptInputError holds an offset only.
			return nil, fmt.Errorf("keyring: parse: key %q: not standard base64: %w", id, err)
		}
		k, err := newKey(id, raw)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("keyring: parse: %w", err)
		}
		r.keys = append(r.keys, k)
		r.byID[id] = k
	}
	return r, nil
}

// newKey makes the ciphers of a key. It does not keep raw.
func newKey(id string, raw []byte) (*key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("key %q: %d bytes, want %d", id, len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", id, err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", id, err)
	}
	random, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", id, err)
	}
	mac, err := hkdf.Key(sha256.New, raw, nil, macInfo, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", id, err)
	}
	return &key{id: id, gcm: gcm, random: random, mac: mac}, nil
}

// validID reports whether id is a valid key id: [A-Za-z0-9_-]{1,32}.
func validID(id string) bool {
	if len(id) == 0 || len(id) > maxIDLen {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Generate returns a new random key entry "id:<base64 32 bytes>", to put in
// DSR_ENCRYPTION_KEYS (first, to make it the active key). The result is key
// material: show it only to whoever configures the key.
func Generate(id string) (spec string, err error) {
	if !validID(id) {
		return "", fmt.Errorf("keyring: generate: key id %q must match [A-Za-z0-9_-]{1,32}", id)
	}
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("keyring: generate: %w", err)
	}
	defer clear(raw)
	return id + ":" + base64.StdEncoding.EncodeToString(raw), nil
}

// ActiveID returns the id of the active key, which encrypts.
func (r *Ring) ActiveID() string { return r.active().id }

// IDs returns the ids of all keys, the active one first.
func (r *Ring) IDs() []string {
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.id
	}
	return ids
}

// active returns the key that encrypts.
func (r *Ring) active() *key { return r.keys[0] }

// lookup returns the key with id, or an error wrapping ErrUnknownKey.
func (r *Ring) lookup(id string) (*key, error) {
	k, ok := r.byID[id]
	if !ok {
		if !validID(id) {
			return nil, fmt.Errorf("malformed key id: %w", ErrUnknownKey)
		}
		return nil, fmt.Errorf("key id %q: %w", id, ErrUnknownKey)
	}
	return k, nil
}

// String describes the ring by its key ids, e.g. "keyring.Ring{active: k2,
// ids: [k2 k1]}". It never shows keys.
func (r *Ring) String() string {
	if r == nil || len(r.keys) == 0 {
		return "keyring.Ring{}"
	}
	return fmt.Sprintf("keyring.Ring{active: %s, ids: [%s]}", r.ActiveID(), strings.Join(r.IDs(), " "))
}

// GoString implements fmt.GoStringer (%#v) like String.
func (r *Ring) GoString() string { return r.String() }

// Format implements fmt.Formatter so that every verb (%v, %+v, %#v, %s, %q,
// %x, ...) prints String, never keys.
func (r *Ring) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(r.String())) }
