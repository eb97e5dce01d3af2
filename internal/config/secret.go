package config

import (
	"fmt"
	"log/slog"
)

// Secret holds a credential. Every way of printing it (fmt verbs, JSON,
// slog) shows "[redacted]"; only Reveal returns the value. The value sits
// behind a pointer so that even fmt's reflection over an unexported field
// (which does not call String) prints an address, not the credential.
type Secret struct{ value *string }

// NewSecret wraps a credential value.
func NewSecret(v string) Secret {
	if v == "" {
		return Secret{}
	}
	return Secret{value: &v}
}

// Reveal returns the credential for the one place that must send it.
func (s Secret) Reveal() string {
	if s.value == nil {
		return ""
	}
	return *s.value
}

// IsSet reports whether a value is present.
func (s Secret) IsSet() bool { return s.value != nil }

const redacted = "[redacted]"

// String implements fmt.Stringer without the value.
func (s Secret) String() string {
	if s.value == nil {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer without the value.
func (s Secret) GoString() string { return s.String() }

// Format implements fmt.Formatter so that %v, %+v, %#v, %s, %q and %x all redact.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalJSON writes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
