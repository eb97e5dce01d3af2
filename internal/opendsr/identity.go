package opendsr

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// NormalizeIdentity returns the canonical form of an identity value: emails
// are trimmed and lowercased, every other type is trimmed only (customer ids
// and device ids can be case-sensitive).
func NormalizeIdentity(identityType, value string) string {
	value = strings.TrimSpace(value)
	if identityType == IdentityTypeEmail {
		value = strings.ToLower(value)
	}
	return value
}

// HashIdentity returns the key under which the ledger and the identity store
// file an identity: the lowercase hex SHA-256 of
// "<identity_type>:<identity_format>:<normalized value>", where an empty
// format means raw, the value goes through NormalizeIdentity, and the hex
// digest of a hashed format (sha1, md5, sha256) is lowercased.
//
// Keys are equal only for the same type, format and value: a subject sent
// raw and the same subject sent as a hash give different keys. Matching
// across formats is a separate concern (the identity store hashes raw
// values into each format).
func HashIdentity(identityType, format, value string) string {
	if format == "" {
		format = IdentityFormatRaw
	}
	value = NormalizeIdentity(identityType, value)
	if format != IdentityFormatRaw {
		value = strings.ToLower(value)
	}
	sum := sha256.Sum256([]byte(identityType + ":" + format + ":" + value))
	return hex.EncodeToString(sum[:])
}
