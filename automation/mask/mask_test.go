package mask_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/mask"
)

// TestMasker_MasksEveryEncodedForm hides a secret given as is, base64
// encoded (as a Kubernetes Secret's data holds it), JSON-escaped once and
// twice (a JSON document inside a JSON string) and Go-quoted.
func TestMasker_MasksEveryEncodedForm(t *testing.T) {
	const secret = `p&ss<w"rd>\tok-7f3c`
	m := mask.New(secret)
	once, err := json.Marshal(secret)
	require.NoError(t, err)
	twice, err := json.Marshal(string(once))
	require.NoError(t, err)
	cases := map[string]string{
		"literal":          secret,
		"base64":           base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64 raw":       base64.RawStdEncoding.EncodeToString([]byte(secret)),
		"base64 url":       base64.URLEncoding.EncodeToString([]byte(secret)),
		"json":             string(once),
		"json in json":     string(twice),
		"go quoted":        fmt.Sprintf("%q", secret),
		"json without esc": `"p&ss<w\"rd>\\tok-7f3c"`,
	}
	for name, form := range cases {
		t.Run(name, func(t *testing.T) {
			out := m.String("error: value " + form + " was rejected")
			assert.Contains(t, out, mask.Text)
			assert.NotContains(t, out, form)
			assert.NotContains(t, out, "7f3c", "no fragment of the secret survives")
		})
	}
}

// TestMasker_EncodedJSONStaysValid masks an encoded JSON document and
// decodes it again: the mask replaces the escaped form inside the string.
func TestMasker_EncodedJSONStaysValid(t *testing.T) {
	const secret = `to"ken\with/slashes`
	b, err := json.Marshal(map[string]string{"error": "apply failed: token " + secret + " refused"})
	require.NoError(t, err)
	out := mask.New(secret).String(string(b))
	var v map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	assert.Equal(t, "apply failed: token "+mask.Text+" refused", v["error"])
}

// TestMasker_ShortValuesAreMaskedAsGiven: a value under MinLen that slipped
// past Check is still masked as given, and Check refuses it without
// printing it.
func TestMasker_ShortValuesAreMaskedAsGiven(t *testing.T) {
	assert.Equal(t, "pin "+mask.Text, mask.New("x9z").String("pin x9z"))
	err := mask.Check("--secret PIN", "x9z")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--secret PIN")
	assert.Contains(t, err.Error(), "shorter than 4 characters")
	assert.NotContains(t, err.Error(), "x9z")
	assert.NoError(t, mask.Check("--secret PIN", "x9z1"))
}

// TestMasker_LongestFormFirstAndNil: a secret containing another is masked
// whole; a nil Masker and With on nil work.
func TestMasker_LongestFormFirstAndNil(t *testing.T) {
	var m *mask.Masker
	assert.Equal(t, "abcd", m.String("abcd"))
	m = m.With("abcd").With("abcdefgh")
	assert.Equal(t, mask.Text+" and "+mask.Text, m.String("abcdefgh and abcd"))
}
