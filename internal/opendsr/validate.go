package opendsr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/netguard"
)

// Limits enforced by Validate.
const (
	// MaxIdentities is the most subject_identities a request may carry.
	MaxIdentities = 50
	// MaxIdentityValueLength is the longest identity_value, in characters.
	MaxIdentityValueLength = 255
	// MaxCallbackURLs is the most status_callback_urls a request may carry.
	MaxCallbackURLs = 10
	// MaxCallbackURLLength is the longest status callback URL, in bytes.
	MaxCallbackURLLength = 2048
	// MaxSubmittedTimeSkew is how far in the future submitted_time may be.
	MaxSubmittedTimeSkew = 24 * time.Hour
)

// ValidateOptions are the settings Validate needs.
type ValidateOptions struct {
	// ProcessorDomain is dsrflow's processor domain, the key of its entry in
	// extensions. When empty, extensions are not examined.
	ProcessorDomain string
	// Now is the current time; zero means time.Now().
	Now time.Time
	// AllowHTTPCallbacks accepts http:// status callback URLs (local use).
	AllowHTTPCallbacks bool
	// AllowUUIDv5 accepts a name-based UUID v5 as subject_request_id (the
	// ids the dsr CLI derives for bulk submissions); OpenDSR asks for v4.
	AllowUUIDv5 bool
	// AllowPrivateCallbacks accepts callback URLs whose host is a loopback,
	// private, link-local or metadata address or localhost (see netguard).
	AllowPrivateCallbacks bool
}

// Validate checks a decoded request against every OpenDSR rule dsrflow
// enforces and returns nil or a 400 *Error whose errors[] holds one item per
// problem found, each naming the field (in Message and Location) and the
// reason. No item ever contains a submitted value.
func Validate(req Request, opts ValidateOptions) *Error {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	var c collector

	switch {
	case req.SubjectRequestID == "":
		c.required("subject_request_id")
	case !isRequestID(req.SubjectRequestID, opts.AllowUUIDv5):
		c.add(ReasonInvalid, "subject_request_id", "subject_request_id must be a lowercase UUID v4")
	}

	typeOK := false
	switch {
	case req.SubjectRequestType == "":
		c.required("subject_request_type")
	case !slices.Contains(dsr.Types(), req.SubjectRequestType):
		c.add(ReasonUnsupported, "subject_request_type", "subject_request_type must be one of erasure, access, portability")
	default:
		typeOK = true
	}

	switch {
	case req.SubmittedTime == "":
		c.required("submitted_time")
	default:
		t, err := req.Submitted()
		switch {
		case err != nil:
			c.add(ReasonInvalid, "submitted_time", "submitted_time must be an RFC 3339 timestamp")
		case t.After(now.Add(MaxSubmittedTimeSkew)):
			c.add(ReasonInvalid, "submitted_time", "submitted_time must not be more than 24 hours in the future")
		}
	}

	regulationOK := false
	switch {
	case req.Regulation == "":
		c.required("regulation")
	case !slices.Contains(dsr.Regulations(), req.Regulation):
		c.add(ReasonUnsupported, "regulation", "regulation must be one of gdpr, ccpa")
	default:
		regulationOK = true
	}

	switch req.APIVersion {
	case "", APIVersion1, APIVersion2:
	default:
		c.add(ReasonUnsupported, "api_version", "api_version must be 1.0 or 2.0")
	}

	validateIdentities(&c, req.SubjectIdentities)
	validateCallbackURLs(&c, req.StatusCallbackURLs, opts)

	if opts.ProcessorDomain != "" {
		ext, items := parseExtension(req, opts.ProcessorDomain)
		c.items = append(c.items, items...)
		if ext.DisclosureType != "" && typeOK && regulationOK &&
			(req.Regulation != dsr.RegulationCCPA || req.SubjectRequestType == dsr.TypeErasure) {
			loc := extensionLocation(opts.ProcessorDomain) + ".disclosure_type"
			c.add(ReasonUnsupported, loc, loc+" applies only to ccpa access and portability requests")
		}
	}

	if len(c.items) == 0 {
		return nil
	}
	return badRequestFromItems(c.items)
}

type collector struct{ items []ErrorItem }

func (c *collector) add(reason, location, message string) {
	c.items = append(c.items, ErrorItem{Domain: ErrorDomain, Reason: reason, Message: message, Location: location})
}

func (c *collector) required(location string) {
	c.add(ReasonRequired, location, location+" is required")
}

func validateIdentities(c *collector, ids []Identity) {
	switch {
	case len(ids) == 0:
		c.add(ReasonRequired, "subject_identities", "subject_identities is required and must hold at least one identity")
		return
	case len(ids) > MaxIdentities:
		c.add(ReasonTooMany, "subject_identities", fmt.Sprintf("subject_identities must hold at most %d identities", MaxIdentities))
		return
	}
	seen := make(map[string]bool, len(ids))
	reported := make(map[string]bool)
	for i, id := range ids {
		base := fmt.Sprintf("subject_identities[%d]", i)
		typeOK := false
		switch {
		case id.IdentityType == "":
			c.required(base + ".identity_type")
		case !slices.Contains(IdentityTypes(), id.IdentityType):
			c.add(ReasonUnsupported, base+".identity_type", base+".identity_type is not a supported identity type")
		default:
			typeOK = true
		}
		if typeOK {
			if seen[id.IdentityType] && !reported[id.IdentityType] {
				c.add(ReasonDuplicateIdentityType, base+".identity_type", DuplicateIdentityTypeMessage)
				reported[id.IdentityType] = true
			}
			seen[id.IdentityType] = true
		}

		format := id.EffectiveFormat()
		formatOK := slices.Contains(IdentityFormats(), format)
		if !formatOK {
			c.add(ReasonUnsupported, base+".identity_format", base+".identity_format must be one of raw, sha1, md5, sha256")
		}

		loc := base + ".identity_value"
		value := strings.TrimSpace(id.IdentityValue)
		switch {
		case value == "":
			c.required(loc)
		case !utf8.ValidString(id.IdentityValue):
			// Decoded bodies were checked by StrictJSON; this catches values built
			// by other means (CSV rows, flags), which JSON would encode as U+FFFD.
			c.add(ReasonMalformed, loc, loc+" is not valid UTF-8")
		case utf8.RuneCountInString(id.IdentityValue) > MaxIdentityValueLength:
			c.add(ReasonInvalid, loc, fmt.Sprintf("%s must be at most %d characters", loc, MaxIdentityValueLength))
		case formatOK:
			if problem := identityValueProblem(id.IdentityType, format, value, typeOK); problem != "" {
				c.add(ReasonInvalid, loc, loc+" "+problem)
			}
		}
	}
}

// identityValueProblem describes what is wrong with a trimmed, non-empty
// value of a known format, or returns "".
func identityValueProblem(identityType, format, value string, typeOK bool) string {
	switch format {
	case IdentityFormatSHA256:
		if !isHex(value, 64) {
			return "must be 64 hexadecimal characters (sha256)"
		}
	case IdentityFormatSHA1:
		if !isHex(value, 40) {
			return "must be 40 hexadecimal characters (sha1)"
		}
	case IdentityFormatMD5:
		if !isHex(value, 32) {
			return "must be 32 hexadecimal characters (md5)"
		}
	case IdentityFormatRaw:
		if !typeOK {
			return ""
		}
		if identityType == IdentityTypeEmail {
			local, domain, ok := strings.Cut(value, "@")
			if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
				return "must be an email address"
			}
		}
		if IsAdvertisingID(identityType) && !isUUID(value) {
			return "must be a UUID"
		}
	}
	return ""
}

func validateCallbackURLs(c *collector, urls []string, opts ValidateOptions) {
	if len(urls) > MaxCallbackURLs {
		c.add(ReasonTooMany, "status_callback_urls", fmt.Sprintf("status_callback_urls must hold at most %d URLs", MaxCallbackURLs))
		return
	}
	for i, raw := range urls {
		loc := fmt.Sprintf("status_callback_urls[%d]", i)
		if problem := callbackURLProblem(raw, opts.AllowHTTPCallbacks, opts.AllowPrivateCallbacks); problem != "" {
			c.add(ReasonInvalid, loc, loc+" "+problem)
		}
	}
}

func callbackURLProblem(raw string, allowHTTP, allowPrivate bool) string {
	if raw == "" {
		return "must not be empty"
	}
	if !utf8.ValidString(raw) {
		return "is not valid UTF-8"
	}
	if len(raw) > MaxCallbackURLLength {
		return fmt.Sprintf("must be at most %d bytes", MaxCallbackURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return "must be an absolute URL"
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case allowHTTP:
		return "must be an https or http URL"
	default:
		return "must be an https URL"
	}
	if u.Hostname() == "" {
		return "must have a host"
	}
	if u.User != nil {
		return "must not contain user information"
	}
	if why := netguard.ForbiddenHost(u.Hostname()); why != "" && !allowPrivate {
		return "must not point at a " + why + " address"
	}
	return ""
}

func extensionLocation(domain string) string {
	return fmt.Sprintf("extensions[%q]", domain)
}

// parseExtension reads extensions[domain]; absent and null give the zero
// value. Another spelling of a known field is refused; unknown keys are ignored.
func parseExtension(req Request, domain string) (ProcessorExtension, []ErrorItem) {
	var ext ProcessorExtension
	raw, ok := req.Extensions[domain]
	raw = bytes.TrimSpace(raw)
	if !ok || len(raw) == 0 || string(raw) == "null" {
		return ext, nil
	}
	base := extensionLocation(domain)
	var c collector
	var fields map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &fields) != nil {
		c.add(ReasonInvalid, base, base+" must be an object")
		return ext, c.items
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if canonical, known := knownFields[foldKey(k)]; known && k != canonical {
			c.add(ReasonInvalid, base+"."+canonical, base+"."+canonical+": keys are case-sensitive; spell it exactly "+canonical)
		}
	}
	if v, ok := fields["skip_waiting_period"]; ok && string(bytes.TrimSpace(v)) != "null" {
		loc := base + ".skip_waiting_period"
		if err := json.Unmarshal(v, &ext.SkipWaitingPeriod); err != nil {
			c.add(ReasonInvalid, loc, loc+" must be a boolean")
		}
	}
	if v, ok := fields["disclosure_type"]; ok && string(bytes.TrimSpace(v)) != "null" {
		loc := base + ".disclosure_type"
		var s string
		if err := json.Unmarshal(v, &s); err != nil || !slices.Contains([]string{DisclosureData, DisclosureCategories, DisclosureSources}, s) {
			c.add(ReasonInvalid, loc, loc+" must be one of data, categories, sources")
		} else {
			ext.DisclosureType = s
		}
	}
	return ext, c.items
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return true
}

func isHexByte(b byte) bool {
	return ('0' <= b && b <= '9') || ('a' <= b && b <= 'f') || ('A' <= b && b <= 'F')
}

// isUUID reports whether s is a canonical 8-4-4-4-12 UUID of any version,
// in either case.
func isUUID(s string) bool {
	return len(s) == 36 && uuid.Validate(s) == nil
}

// isRequestID reports whether s is a lowercase canonical UUID with the RFC
// 9562 variant and version 4 (random), or 5 (name-based) when allowed.
func isRequestID(s string, allowV5 bool) bool {
	if !isUUID(s) || strings.ToLower(s) != s {
		return false
	}
	u := uuid.MustParse(s)
	return u.Variant() == uuid.RFC4122 && (u.Version() == 4 || allowV5 && u.Version() == 5)
}
