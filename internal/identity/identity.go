// Package identity turns the identities a controller sends with a data
// subject request (an email, a customer id, device ids, possibly hashed) into
// the distinct_ids each Mixpanel destination deletes by.
//
// It has three parts:
//
//   - Store, the profile store: profiles (an id, identities and attributes)
//     imported from a controller's systems (Import, Upsert) into the same
//     database as the ledger, and looked up by raw or hashed identity (Find).
//     Every profile belongs to one controller and every call is scoped to
//     one. It keeps each identity's value once, beside the SHA-256, SHA-1 and
//     MD5 digests of its normalised form, which are what lookups go through.
//     Erase deletes an erased person's profiles and leaves keyed hashes of
//     their identities on a suppression list, which later imports respect.
//   - Resolve, a pure function applying mParticle's identity rules, made
//     transparent: one profile is resolved and enriched, several profiles are
//     never guessed between silently, device-only requests do not reach
//     profiles protected by a login id, and the result says which rule applied
//     and why. Apart from the distinct_ids it decides on, it holds no
//     identity value (Resolution.Redacted drops those).
//   - Finder, what resolution looks identities up in: the Store, or an
//     HTTPFinder asking a company's own identity service.
//
// Identity values are personal data. No error, reason or trace of this
// package contains one (profile ids and identity types are fine); a Query or
// an Identity printed with fmt shows its type only.
package identity

import (
	"crypto/md5" // md5 and sha1 are identity formats here, not security
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// Limits on what the store accepts.
const (
	// MaxProfileIDLength is the longest profile id, in bytes.
	MaxProfileIDLength = 255
	// MaxValueLength is the longest identity value, in characters: the
	// longest a request may carry (opendsr.MaxIdentityValueLength).
	MaxValueLength = opendsr.MaxIdentityValueLength
)

// Identity is one identity of a profile.
type Identity struct {
	// Type is an OpenDSR identity type, e.g. "email".
	Type string `json:"type"`
	// Value is the identity as given, trimmed of surrounding spaces.
	Value string `json:"value"`
}

// String returns the identity's type only: values are personal data.
func (id Identity) String() string { return id.Type }

// Profile is one person (or device) known to the controller, with every
// identity it is known by and attributes shown to the subject in access
// results.
type Profile struct {
	// ID identifies the profile in the controller's systems.
	ID string `json:"profile_id"`
	// Identities may hold several values of one type (e.g. two devices).
	Identities []Identity `json:"identities"`
	// Attributes are free-form; numbers read back as json.Number.
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Query is one identity to look profiles up by, as a request carries it. Its
// fields match dsr.Identity's, so one converts to the other.
type Query struct {
	// Type is an OpenDSR identity type.
	Type string `json:"identity_type"`
	// Format is raw, sha256, sha1 or md5; empty means raw.
	Format string `json:"identity_format,omitempty"`
	// Value is the identity, or the hex digest of its normalised value.
	Value string `json:"identity_value"`
}

// String returns the query's type and format only: values are personal data.
func (q Query) String() string { return q.Type + "/" + q.EffectiveFormat() }

// EffectiveFormat returns Format, or raw when it is empty.
func (q Query) EffectiveFormat() string {
	if q.Format == "" {
		return opendsr.IdentityFormatRaw
	}
	return q.Format
}

// Match is one profile that matched some of the queries given to Find.
type Match struct {
	// Profile is the whole profile: every identity and the attributes.
	Profile Profile `json:"profile"`
	// Inputs are the indexes of the queries that matched it, ascending.
	Inputs []int `json:"inputs"`
}

// DefaultLoginTypes are the identity types that count as login ids unless
// configured otherwise: the customer id and the email.
func DefaultLoginTypes() []string {
	return []string{opendsr.IdentityTypeControllerCustomerID, opendsr.IdentityTypeEmail}
}

// DeviceTypes are the identity types Resolve maps to "<DeviceIDPrefix><id>"
// for a device-only profile: the Android id, the iOS vendor id and the
// advertising ids.
func DeviceTypes() []string {
	return []string{
		opendsr.IdentityTypeAndroidID, opendsr.IdentityTypeIOSVendorID,
		opendsr.IdentityTypeAndroidAdvertisingID, opendsr.IdentityTypeIOSAdvertisingID,
		opendsr.IdentityTypeFireAdvertisingID, opendsr.IdentityTypeMicrosoftAdvertisingID,
		opendsr.IdentityTypeRokuAdvertisingID,
	}
}

// deviceTypes is DeviceTypes as a set.
var deviceTypes = setOf(DeviceTypes())

// ErrInvalid is wrapped by every error about a profile or query that the
// store refuses (unknown type, bad value, ...). Such errors are permanent.
var ErrInvalid = errors.New("invalid")

// knownTypes is the set of OpenDSR identity types.
var knownTypes = setOf(opendsr.IdentityTypes())

func setOf(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// KnownType reports whether t is an OpenDSR identity type.
func KnownType(t string) bool { return knownTypes[t] }

// normalize returns the canonical form of a value: trimmed, and lowercased
// for emails (opendsr.NormalizeIdentity).
func normalize(typ, value string) string { return opendsr.NormalizeIdentity(typ, value) }

// valueProblem checks an identity value of a known type and returns what is
// wrong with it, or "". The description never contains the value.
func valueProblem(typ, value string) string {
	v := strings.TrimSpace(value)
	switch {
	case v == "":
		return "empty value"
	case !utf8.ValidString(v):
		return "value is not valid UTF-8"
	case strings.ContainsRune(v, 0):
		return "value contains a NUL character"
	case utf8.RuneCountInString(v) > MaxValueLength:
		return fmt.Sprintf("value longer than %d characters", MaxValueLength)
	case typ == opendsr.IdentityTypeEmail && !looksLikeEmail(v):
		return "not an email address"
	}
	return ""
}

// looksLikeEmail applies the request validator's rule: local@domain.
func looksLikeEmail(v string) bool {
	local, domain, ok := strings.Cut(v, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") && !strings.ContainsAny(v, " \t\r\n")
}

// profileIDProblem describes what is wrong with a profile id, or returns "".
func profileIDProblem(id string) string {
	switch {
	case id == "":
		return "missing profile_id"
	case strings.TrimSpace(id) != id:
		return "profile_id has surrounding spaces"
	case len(id) > MaxProfileIDLength:
		return fmt.Sprintf("profile_id longer than %d bytes", MaxProfileIDLength)
	case !utf8.ValidString(id) || strings.ContainsRune(id, 0):
		return "profile_id is not valid UTF-8 text"
	}
	return ""
}

// digests are the binary SHA-256, SHA-1 and MD5 of a normalised value.
type digests struct {
	sha256, sha1, md5 []byte
}

func digestsOf(typ, value string) digests {
	n := []byte(normalize(typ, value))
	s256 := sha256.Sum256(n)
	s1 := sha1.Sum(n)
	m5 := md5.Sum(n)
	return digests{sha256: s256[:], sha1: s1[:], md5: m5[:]}
}

// lookup is a query translated into what the store indexes: the column to
// search and the binary digest to search it for.
type lookup struct {
	typ    string
	column string // sha256, sha1 or md5
	digest []byte
}

// lookupOf translates a query. A raw value is searched by the SHA-256 of its
// normalised form; a hashed value by its own digest. Errors name the type
// and format, never the value.
func lookupOf(q Query) (lookup, error) {
	if !KnownType(q.Type) {
		return lookup{}, fmt.Errorf("%w: unknown identity type", ErrInvalid)
	}
	format := q.EffectiveFormat()
	size := 0
	switch format {
	case opendsr.IdentityFormatRaw:
		if p := valueProblem(q.Type, q.Value); p != "" && p != "not an email address" {
			return lookup{}, fmt.Errorf("%w: %s %s", ErrInvalid, q, p)
		}
		return lookup{typ: q.Type, column: "sha256", digest: digestsOf(q.Type, q.Value).sha256}, nil
	case opendsr.IdentityFormatSHA256:
		size = sha256.Size
	case opendsr.IdentityFormatSHA1:
		size = sha1.Size
	case opendsr.IdentityFormatMD5:
		size = md5.Size
	default:
		return lookup{}, fmt.Errorf("%w: %s: unknown identity format", ErrInvalid, q.Type)
	}
	d, err := hex.DecodeString(strings.ToLower(strings.TrimSpace(q.Value)))
	if err != nil || len(d) != size {
		return lookup{}, fmt.Errorf("%w: %s value must be %d hexadecimal characters", ErrInvalid, q, 2*size)
	}
	return lookup{typ: q.Type, column: format, digest: d}, nil
}
