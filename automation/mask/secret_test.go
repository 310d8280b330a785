package mask_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/mask"
)

const (
	sig    = "4dabf18193072939515e22adb298388d"
	sigVal = "1b47061264138c4ac30d75fd1eb44270"
	cipher = "v1:QUJDREVGR0hJSktM:c2VjcmV0LWNpcGhlcnRleHQ="
)

// TestMasker_StringMasksCiphertextsFailClosed: every Masker, the nil one
// and one without the secret's value included, hides Pulumi ciphertexts
// and the ciphertext and plaintext members of serialised secrets, also in
// a JSON document inside a JSON string; look-alikes stay.
func TestMasker_StringMasksCiphertextsFailClosed(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"ciphertext in a message", "state holds " + cipher + " for web",
			"state holds [secret] for web"},
		{"ciphertext member", `{"` + sig + `":"` + sigVal + `","ciphertext": "AQICAHhz+k/9w=="}`,
			`{"` + sig + `":"` + sigVal + `","ciphertext": "[secret]"}`},
		{"plaintext member with escapes", `{"plaintext":"\"hunt\\\"er2\"","x":1}`,
			`{"plaintext":"[secret]","x":1}`},
		{"plaintext member in JSON in JSON", `{"state":"{\"plaintext\":\"\\\"hunt\\\\\\\"er2\\\"\",\"x\":1}"}`,
			`{"state":"{\"plaintext\":\"[secret]\",\"x\":1}"}`},
		{"ciphertext member in JSON in JSON", `{"e":"{\"ciphertext\": \"AQICAHhz\\u0026k\"}"}`,
			`{"e":"{\"ciphertext\": \"[secret]\"}"}`},
		{"version numbers stay", "pulumi v1.2.3 and api v1:short:x", "pulumi v1.2.3 and api v1:short:x"},
		{"other members stay", `{"ciphertexts":"a","text":"plaintext"}`, `{"ciphertexts":"a","text":"plaintext"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var none *mask.Masker
			assert.Equal(t, c.want, none.String(c.in), "nil Masker")
			assert.Equal(t, c.want, mask.New("unrelated-value").String(c.in), "Masker with values")
			if json.Valid([]byte(c.in)) {
				assert.True(t, json.Valid([]byte(c.want)), "masking keeps JSON valid")
			}
		})
	}
}

// TestMasker_StringKeepsNestedJSONDecodable: the masked JSON-in-JSON
// document still decodes, twice.
func TestMasker_StringKeepsNestedJSONDecodable(t *testing.T) {
	inner, err := json.Marshal(map[string]any{"password": map[string]any{sig: sigVal, "plaintext": `"p\"w\\d"`}})
	require.NoError(t, err)
	outer, err := json.Marshal(map[string]string{"state": string(inner)})
	require.NoError(t, err)
	var o map[string]string
	require.NoError(t, json.Unmarshal([]byte(mask.New().String(string(outer))), &o))
	var i map[string]map[string]string
	require.NoError(t, json.Unmarshal([]byte(o["state"]), &i), o["state"])
	assert.Equal(t, mask.Text, i["password"]["plaintext"])
}

// failing does not encode as JSON; its text holds a secret.
type failing struct{}

func (failing) MarshalJSON() ([]byte, error) { return nil, errors.New("no") }
func (failing) String() string               { return "token hunter2-x" }

// TestMasker_ValueReplacesSecretValues: values the engine marks secret
// become Text wherever they are nested, strings and keys are masked,
// other types go through JSON, scalars stay.
func TestMasker_ValueReplacesSecretValues(t *testing.T) {
	m := mask.New("hunter2-x")
	cases := []struct {
		name    string
		in, out any
	}{
		{"nil", nil, nil},
		{"number", 3.5, 3.5},
		{"bool", true, true},
		{"masked marker", "[secret]", mask.Text},
		{"ciphertext string", "enc " + cipher, mask.Text},
		{"secret value in a string", "token hunter2-x", "token [secret]"},
		{"serialised secret", map[string]any{sig: sigVal, "value": "hunter2-x"}, mask.Text},
		{"nested", map[string]any{"a": map[string]any{"ciphertext": "AQIC"}, "b": []any{"x", cipher, 1.0}},
			map[string]any{"a": mask.Text, "b": []any{"x", mask.Text, 1.0}}},
		{"key", map[string]any{"hunter2-x": "v"}, map[string]any{mask.Text: "v"}},
		{"typed map through JSON", map[string]string{"k": "hunter2-x", "p": `{"plaintext":"pw"}`},
			map[string]any{"k": mask.Text, "p": `{"plaintext":"[secret]"}`}},
		{"struct through JSON", struct{ Token string }{"hunter2-x"}, map[string]any{"Token": mask.Text}},
		{"does not encode", failing{}, "token [secret]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.out, m.Value(c.in))
		})
	}
}

// TestMasker_ValueNilAndInputUnchanged: a nil Masker still replaces what
// the engine marks secret, and Value leaves its argument as it was.
func TestMasker_ValueNilAndInputUnchanged(t *testing.T) {
	in := map[string]any{"token": map[string]any{sig: sigVal, "ciphertext": cipher}, "name": "web"}
	var none *mask.Masker
	assert.Equal(t, map[string]any{"token": mask.Text, "name": "web"}, none.Value(in))
	assert.Equal(t, cipher, in["token"].(map[string]any)["ciphertext"], "the input is not modified")
}
