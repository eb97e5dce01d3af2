package opendsr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNesting bounds how deeply objects and arrays may nest in a body.
const maxNesting = 32

// knownFields are the JSON names of every field a request may carry. encoding/json
// matches struct fields without regard to case, so StrictJSON refuses any other
// spelling of them.
var knownFields = jsonFieldNames(Request{}, Identity{}, ProcessorExtension{}, struct {
	ProfileID string `json:"profile_id"`
}{})

// StrictJSON checks a JSON document before it is decoded, refusing what
// encoding/json would otherwise take silently: invalid UTF-8 and unpaired
// UTF-16 surrogate escapes (decoded as U+FFFD, a different value than the
// one sent), a key that appears twice in one object at any depth, also when
// the two differ only in case (the last one would win), another spelling of
// a known field name (matched without regard to case), and nesting deeper than
// 32 levels. It returns nil or a 400 *Error naming where the problem is, never
// echoing a value or an unknown key. raw must be syntactically valid JSON.
func StrictJSON(raw []byte) *Error {
	w := strictWalker{dec: json.NewDecoder(bytes.NewReader(raw)), raw: raw}
	w.dec.UseNumber()
	if e := w.value("body", 0); e != nil {
		return e
	}
	if _, err := w.dec.Token(); !errors.Is(err, io.EOF) {
		return BadRequest("The request body is not valid JSON",
			ErrorItem{Reason: ReasonMalformed, Message: "The request body is not valid JSON", Location: "body"})
	}
	return nil
}

type strictWalker struct {
	dec  *json.Decoder
	raw  []byte
	last int64 // input offset after the previous token
}

// token reads the next token and checks the bytes it was read from.
func (w *strictWalker) token(loc string) (json.Token, *Error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, BadRequest("The request body is not valid JSON",
			ErrorItem{Reason: ReasonMalformed, Message: "The request body is not valid JSON", Location: "body"})
	}
	span := w.raw[w.last:w.dec.InputOffset()]
	w.last = w.dec.InputOffset()
	if !utf8.Valid(span) {
		return nil, strictError(ReasonMalformed, loc, loc+" is not valid UTF-8")
	}
	if _, ok := tok.(string); ok && unpairedSurrogate(span) {
		return nil, strictError(ReasonMalformed, loc, loc+" holds an unpaired UTF-16 surrogate escape")
	}
	return tok, nil
}

// value walks one JSON value at loc.
func (w *strictWalker) value(loc string, depth int) *Error {
	tok, e := w.token(loc)
	if e != nil {
		return e
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxNesting {
		return strictError(ReasonInvalid, "body", fmt.Sprintf("The request body nests objects and arrays more than %d levels deep", maxNesting))
	}
	if delim == '[' {
		for i := 0; w.dec.More(); i++ {
			if e := w.value(indexLocation(loc, i), depth+1); e != nil {
				return e
			}
		}
	} else {
		seen := map[string]bool{}
		for w.dec.More() {
			tok, e := w.token(loc)
			if e != nil {
				return e
			}
			key, _ := tok.(string) // object keys are strings
			folded := foldKey(key)
			child := keyLocation(loc, key, folded)
			if seen[folded] {
				return strictError(ReasonDuplicateKey, child,
					child+" appears more than once in one object (keys are compared without regard to case)")
			}
			seen[folded] = true
			if canonical, known := knownFields[folded]; known && key != canonical && !inExtensions(loc) {
				return strictError(ReasonInvalid, child, child+": keys are case-sensitive; spell it exactly "+canonical)
			}
			if e := w.value(child, depth+1); e != nil {
				return e
			}
		}
	}
	_, e = w.token(loc) // the closing delimiter
	return e
}

// keyLocation names the member key of the object at loc: a known field by its
// canonical name, an extensions entry by its domain, anything else by the
// object alone (an unknown key may itself be data).
func keyLocation(loc, key, folded string) string {
	if canonical, ok := knownFields[folded]; ok {
		if loc == "body" {
			return canonical
		}
		return loc + "." + canonical
	}
	if loc == "extensions" && isDomainName(key) {
		return extensionLocation(key)
	}
	return loc
}

func indexLocation(loc string, i int) string {
	return loc + "[" + strconv.Itoa(i) + "]"
}

// inExtensions reports whether loc is inside an extensions entry, whose
// content belongs to its processor (only dsrflow's own is read, exactly).
func inExtensions(loc string) bool { return strings.HasPrefix(loc, "extensions[") }

// isDomainName reports whether s looks like a processor domain, so it may
// be named in an error or an answer.
func isDomainName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '-' || r == '_' || r == ':' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// foldKey maps s to a case-free form: every rune becomes the smallest rune of
// its Unicode simple-folding orbit, so "K", "k" and the Kelvin sign agree, as
// they do for encoding/json.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		ascii = s[i] < utf8.RuneSelf
	}
	if ascii {
		return strings.ToUpper(s) // an ASCII letter's orbit starts with its capital
	}
	var b strings.Builder
	for _, r := range s {
		smallest := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			smallest = min(smallest, f)
		}
		b.WriteRune(smallest)
	}
	return b.String()
}

// unpairedSurrogate reports whether the source span of a string token holds
// a \uXXXX escape of a UTF-16 surrogate that is not part of a high-low pair
// (encoding/json decodes it as U+FFFD).
func unpairedSurrogate(span []byte) bool {
	high := false // the previous escape was a high surrogate
	for i := 0; i < len(span); i++ {
		if span[i] != '\\' || i+1 >= len(span) {
			if high {
				return true
			}
			continue
		}
		if span[i+1] != 'u' || i+6 > len(span) {
			if high {
				return true
			}
			i++ // skip the escaped character (a backslash too)
			continue
		}
		u, err := strconv.ParseUint(string(span[i+2:i+6]), 16, 16)
		if err != nil {
			return false // not valid JSON; the decoder has refused it already
		}
		i += 5
		switch {
		case u >= 0xD800 && u < 0xDC00:
			if high {
				return true
			}
			high = true
		case u >= 0xDC00 && u < 0xE000:
			if !high {
				return true
			}
			high = false
		default:
			if high {
				return true
			}
		}
	}
	return high
}

func strictError(reason, loc, msg string) *Error {
	return BadRequest(msg, ErrorItem{Reason: reason, Message: msg, Location: loc})
}

// jsonFieldNames maps the folded JSON name of every field of the given
// structs to its exact name.
func jsonFieldNames(structs ...any) map[string]string {
	out := map[string]string{}
	for _, s := range structs {
		t := reflect.TypeOf(s)
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				out[foldKey(name)] = name
			}
		}
	}
	return out
}
