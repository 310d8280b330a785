// Package mask removes secrets from text and values: the one place where
// Slipway decides what a secret looks like in output. The engine's spans,
// run and release records (package automation, package runs), telemetry,
// the reports (package report) and the command line's logs, errors and
// JSON all mask through a Masker, so a value given once is hidden the same
// way everywhere.
//
// A Masker hides each value as given and in the forms it takes when it is
// carried inside other text: base64 (standard and URL alphabets, with and
// without padding, as in a Kubernetes Secret's data), JSON string escaping
// (once and twice, as in a JSON document inside a JSON string, and with and
// without HTML escaping) and Go quoting.
//
// Every Masker, the nil one included, also hides what the engine's secrets
// look like without knowing their values (it fails closed): a Pulumi
// ciphertext (v1:nonce:data), the "ciphertext" or "plaintext" member of a
// serialised secret, and, in Value, any value Pulumi marks secret.
package mask

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Text is what a Masker puts in place of a secret value.
const Text = "[secret]"

// MinLen is the shortest secret value, in bytes, that can be masked:
// shorter values would mask ordinary words and numbers everywhere, so
// Check refuses them and callers that take secrets (the command line,
// package stacks) refuse them before anything runs.
const MinLen = 4

// Masker replaces secret values, in every form it knows, with Text. The
// zero value and a nil Masker have no values but still mask ciphertexts
// and serialised secrets. A Masker is safe for concurrent use once built.
type Masker struct {
	forms []string // longest first, so a form containing another is masked whole
}

// New returns a Masker for values. Values shorter than MinLen are masked
// too, but only as given (not their encodings), so that a secret that
// slipped past Check is still hidden; an empty value is ignored.
func New(values ...string) *Masker {
	seen := map[string]bool{}
	m := &Masker{}
	add := func(f string) {
		if f != "" && !seen[f] {
			seen[f] = true
			m.forms = append(m.forms, f)
		}
	}
	for _, v := range values {
		if v == "" {
			continue
		}
		add(v)
		if len(v) < MinLen {
			continue
		}
		for _, f := range forms(v) {
			add(f)
		}
	}
	slices.SortFunc(m.forms, func(a, b string) int { return len(b) - len(a) })
	return m
}

// forms lists the encodings of v that New masks besides v itself.
func forms(v string) []string {
	b := []byte(v)
	out := []string{
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
	}
	once := jsonEscape(v, true)
	out = append(out, once, jsonEscape(v, false), jsonEscape(once, true), jsonEscape(jsonEscape(v, false), false))
	q := strconv.Quote(v)
	out = append(out, q[1:len(q)-1])
	return slices.DeleteFunc(out, func(f string) bool { return f == v })
}

// jsonEscape returns v as it appears inside a JSON string.
func jsonEscape(v string, html bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(v) // a string always encodes
	s := strings.TrimSuffix(b.String(), "\n")
	return s[1 : len(s)-1]
}

// With returns a Masker for m's values and values.
func (m *Masker) With(values ...string) *Masker {
	n := New(values...)
	if m == nil {
		return n
	}
	seen := map[string]bool{}
	for _, f := range n.forms {
		seen[f] = true
	}
	for _, f := range m.forms {
		if !seen[f] {
			n.forms = append(n.forms, f)
		}
	}
	slices.SortFunc(n.forms, func(a, b string) int { return len(b) - len(a) })
	return n
}

// String returns s with every form of every value replaced by Text, and
// every ciphertext and every ciphertext or plaintext member of a
// serialised secret (in JSON, or in JSON inside a JSON string) replaced by
// Text, also when m is nil.
func (m *Masker) String(s string) string {
	if m != nil {
		for _, f := range m.forms {
			s = strings.ReplaceAll(s, f, Text)
		}
	}
	return maskSerialised(s)
}

// Check returns an error when v cannot be masked reliably (shorter than
// MinLen); name says where the value came from, e.g. "--secret API_TOKEN".
// The error never contains the value.
func Check(name, v string) error {
	if len(v) < MinLen {
		return fmt.Errorf("%s: the value is shorter than %d characters and could not be masked in output; use a longer secret", name, MinLen)
	}
	return nil
}
