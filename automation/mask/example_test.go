package mask_test

import (
	"fmt"

	"github.com/slipwayhq/slipway/automation/mask"
)

// A Masker hides the values it was given, in their encoded forms too, and
// (even a nil one) anything that looks like an engine secret.
func ExampleMasker() {
	m := mask.New("hunter2-token")
	fmt.Println(m.String("login with hunter2-token failed"))
	fmt.Println(m.String(`{"data":{"token":"aHVudGVyMi10b2tlbg=="}}`))

	var none *mask.Masker
	fmt.Println(none.String(`state: {"ciphertext":"v1:QUJDREVGR0hJSktM:c2VjcmV0LWNpcGhlcnRleHQ="}`))

	fmt.Println(m.Value(map[string]any{
		"user":  "web",
		"token": map[string]any{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "AQIC"},
		"note":  "uses hunter2-token",
	}))
	// Output:
	// login with [secret] failed
	// {"data":{"token":"[secret]"}}
	// state: {"ciphertext":"[secret]"}
	// map[note:uses [secret] token:[secret] user:web]
}
