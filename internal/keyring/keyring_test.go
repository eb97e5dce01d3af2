package keyring

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// genKey returns a new key entry "id:base64" and its base64 key.
func genKey(t testing.TB, id string) (entry, b64 string) {
	t.Helper()
	entry, err := Generate(id)
	if err != nil {
		t.Fatalf("Generate(%q): %v", id, err)
	}
	_, b64, _ = strings.Cut(entry, ":")
	return entry, b64
}

// mustParse parses spec or fails the test.
func mustParse(t testing.TB, spec string) *Ring {
	t.Helper()
	r, err := Parse(spec)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

// newRing returns a ring of new keys with ids, the first active.
func newRing(t testing.TB, ids ...string) *Ring {
	t.Helper()
	entries := make([]string, len(ids))
	for i, id := range ids {
		entries[i], _ = genKey(t, id)
	}
	return mustParse(t, strings.Join(entries, ","))
}

// keyForms returns forms in which key material could leak into text: the
// base64 of each key, its hex, and its raw bytes.
func keyForms(t *testing.T, b64s ...string) []string {
	t.Helper()
	var forms []string
	for _, b := range b64s {
		raw, err := base64.StdEncoding.DecodeString(b)
		if err != nil {
			t.Fatal(err)
		}
		forms = append(forms, b, b[:12], hex.EncodeToString(raw), hex.EncodeToString(raw)[:16], string(raw[:8]))
	}
	return forms
}

// assertNoKeys fails if text holds any of forms.
func assertNoKeys(t *testing.T, what, text string, forms []string) {
	t.Helper()
	for _, f := range forms {
		if strings.Contains(text, f) {
			t.Errorf("%s contains key material %q: %s", what, f, text)
		}
	}
}

func TestParse(t *testing.T) {
	e1, _ := genKey(t, "k2026-b")
	e2, _ := genKey(t, "k_2026a")
	r, err := Parse(" " + e1 + " ,\n" + e2 + "\n")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := r.ActiveID(); got != "k2026-b" {
		t.Errorf("ActiveID = %q, want k2026-b", got)
	}
	if got := strings.Join(r.IDs(), ","); got != "k2026-b,k_2026a" {
		t.Errorf("IDs = %q", got)
	}
}

func TestParseErrorsHideKeys(t *testing.T) {
	_, good := genKey(t, "x")
	short := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	long := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 33)))
	forms := keyForms(t, good, short, long)
	tests := []struct{ name, spec string }{
		{"empty", ""},
		{"spaces", "  \n"},
		{"no colon", good},
		{"swapped id and key", good + ":k1"},
		{"empty id", ":" + good},
		{"bad id chars", "k 1:" + good},
		{"id too long", strings.Repeat("a", 33) + ":" + good},
		{"empty key", "k1:"},
		{"not base64", "k1:" + good[:20] + "!" + good[21:]},
		{"url base64", "k1:" + strings.NewReplacer("+", "-", "/", "_").Replace(good) + "-_"},
		{"short key", "k1:" + short},
		{"long key", "k1:" + long},
		{"duplicate id", "k1:" + good + ",k1:" + good},
		{"empty entry", "k1:" + good + ",,k2:" + good},
		{"trailing comma", "k1:" + good + ","},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.spec)
			if err == nil {
				t.Fatalf("Parse(%s) = %v, want error", tt.name, r)
			}
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
				assertNoKeys(t, "error", fmt.Sprintf(verb, err), forms)
			}
			if !strings.HasPrefix(err.Error(), "keyring: parse") {
				t.Errorf("error %q lacks context", err)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	a, _ := genKey(t, "a")
	b, _ := genKey(t, "a")
	if a == b {
		t.Error("two generated keys are equal")
	}
	if !strings.HasPrefix(a, "a:") {
		t.Errorf("Generate = %q..., want a: prefix", a[:4])
	}
	mustParse(t, a)
	for _, id := range []string{"", "a:b", "a,b", "é", strings.Repeat("x", 33)} {
		if _, err := Generate(id); err == nil {
			t.Errorf("Generate(%q): no error", id)
		}
	}
}

// TestRingNeverPrintsKeys prints a ring in every way fmt can reach it.
func TestRingNeverPrintsKeys(t *testing.T) {
	e1, b1 := genKey(t, "new")
	e2, b2 := genKey(t, "old")
	r := mustParse(t, e1+","+e2)
	forms := keyForms(t, b1, b2)
	type holder struct {
		R    *Ring
		ring Ring
	}
	values := map[string]any{
		"*Ring":  r,
		"Ring":   *r,
		"holder": holder{R: r, ring: *r},
		"&hold":  &holder{R: r, ring: *r},
		"slice":  []*Ring{r},
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
			assertNoKeys(t, name+" "+verb, fmt.Sprintf(verb, v), forms)
		}
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got, want := fmt.Sprintf(verb, r), "keyring.Ring{active: new, ids: [new old]}"; got != want {
			t.Errorf("Sprintf(%s) = %q, want %q", verb, got, want)
		}
	}
	if got := fmt.Sprint((*Ring)(nil)); got != "keyring.Ring{}" {
		t.Errorf("nil ring prints %q", got)
	}
}

func TestLookupErrors(t *testing.T) {
	r := newRing(t, "k1")
	_, err := r.lookup("gone")
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"gone"`) {
		t.Errorf("lookup(gone) = %v", err)
	}
	_, err = r.lookup("bad id\x00")
	if !errors.Is(err, ErrUnknownKey) || strings.Contains(err.Error(), "bad id") {
		t.Errorf("lookup(malformed) = %v", err)
	}
}
