package toolchain

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPassphraseKey_PatchedPackageKeepsItsBehaviour applies the pulumi
// build's patches and runs the passphrase manager's own tests with the
// patch's: the key SLIPWAY_PASSPHRASE_KEY carries is used for its salt and
// passphrase only and checked as a passphrase is (a wrong key is an
// incorrect passphrase), and every other value leaves the derivation as it
// was.
func TestPassphraseKey_PatchedPackageKeepsItsBehaviour(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	g, _ := patchedPulumi(ctx, t)
	out, err := g.Run(ctx, "test", "-count=1", "-v", "github.com/pulumi/pulumi/pkg/v3/secrets/passphrase")
	require.NoError(t, err, "the passphrase manager's tests with the patch:\n%s", failures(out))
	for _, name := range []string{"TestSlipwayPassphraseKey_UsedOnlyForItsSaltAndPassphraseAndChecked",
		"TestPassphraseManagerIncorrectPassphraseReturnsErrorCrypter", "TestPassphraseManagerCorrectPassphraseReturnsSecretsManager"} {
		assert.Regexp(t, regexp.MustCompile(`(?m)^\s*--- PASS: `+name+` `), out)
	}
	assert.NotRegexp(t, `(?m)^\s*--- FAIL`, out)
}
