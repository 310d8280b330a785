package input

import (
	"errors"
	"os"
	"strings"

	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// ServeSecret reads a secret from the file a flag names, else from an
// environment variable. A file that cannot be read or holds only
// whitespace is bad input naming the flag; the secret is never printed.
func ServeSecret(flag, file, env string) ([]byte, error) {
	if file == "" {
		return []byte(strings.TrimSpace(os.Getenv(env))), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, app.BadInput("%s %q is not a readable file: %v", flag, file, errors.Unwrap(err))
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return nil, app.BadInput("%s %q is empty; write the secret into it", flag, file)
	}
	return []byte(v), nil
}
