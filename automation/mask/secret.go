package mask

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// secretSig is the key Pulumi puts in a value it serialises as secret
// ({"4dabf…": "1b47…", "ciphertext": "…"} in state, plans and events).
const secretSig = "4dabf18193072939515e22adb298388d"

var (
	// ciphertext matches a Pulumi passphrase or service ciphertext:
	// v1:<base64 nonce>:<base64 data>.
	ciphertext = regexp.MustCompile(`\bv1:[A-Za-z0-9+/=]{8,}:[A-Za-z0-9+/=]{8,}`)
	// member matches the ciphertext or plaintext member of a serialised
	// secret in JSON; group 1 is the name and colon, kept.
	member = regexp.MustCompile(`("(?:ciphertext|plaintext)"\s*:\s*)"(?:[^"\\]|\\.)*"`)
	// escapedMember matches the same member in a JSON document carried in
	// a JSON string (every quote escaped): the value runs to the first
	// escaped quote that the inner document does not escape again.
	escapedMember = regexp.MustCompile(`(\\"(?:ciphertext|plaintext)\\"\s*:\s*)\\"(?:\\\\(?:\\.|[^\\"])|\\[^\\"]|[^\\"])*\\"`)
)

// maskSerialised replaces ciphertexts and the values of serialised
// secrets' ciphertext and plaintext members in s with Text.
func maskSerialised(s string) string {
	if strings.Contains(s, "text") { // ciphertext, plaintext: skip the regexps for most text
		s = member.ReplaceAllString(s, `$1"`+Text+`"`)
		s = escapedMember.ReplaceAllString(s, `$1\"`+Text+`\"`)
	}
	if strings.Contains(s, "v1:") {
		s = ciphertext.ReplaceAllString(s, Text)
	}
	return s
}

// Value returns v with every value the engine marks secret replaced by
// Text and every string (object keys too) masked as String masks it. A
// value is secret when it is Text itself, a string holding a ciphertext,
// or an object carrying Pulumi's secret signature or a ciphertext or
// plaintext member.
//
// v is meant to be what encoding/json decodes into an any (a property
// value, an output): nil, booleans and numbers are returned as they are;
// strings, []any and map[string]any are masked; any other type (a struct,
// a typed map or slice) is converted through JSON first, or, when it does
// not encode, returned as its masked fmt.Sprint text. v is not modified;
// a nil m masks only what the engine marks secret and ciphertexts.
func (m *Masker) Value(v any) any {
	if secret(v) {
		return Text
	}
	switch x := v.(type) {
	case nil, bool, float64, float32, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64, json.Number:
		return v
	case string:
		return m.String(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[m.String(k)] = m.Value(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.Value(e)
		}
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return m.String(fmt.Sprint(v))
	}
	var plain any
	if err := json.Unmarshal(b, &plain); err != nil {
		return m.String(string(b))
	}
	return m.Value(plain)
}

// secret reports whether v is a value the engine marks secret.
func secret(v any) bool {
	switch x := v.(type) {
	case string:
		return x == Text || ciphertext.MatchString(x)
	case map[string]any:
		for _, k := range []string{secretSig, "ciphertext", "plaintext"} {
			if _, ok := x[k]; ok {
				return true
			}
		}
	}
	return false
}
