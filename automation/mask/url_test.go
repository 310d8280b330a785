package mask_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/slipwayhq/slipway/automation/mask"
)

// TestURL_DropsUserInformationAndQuery: the one URL-credential redaction
// (backend, Pushgateway and Git source URLs): user information and query
// go, the rest stays; a string that does not parse loses them by text.
func TestURL_DropsUserInformationAndQuery(t *testing.T) {
	for in, want := range map[string]string{
		"s3://bucket/state?region=eu-west-1&secret=x":  "s3://bucket/state",
		"https://user:pw@pushgateway:9091/metrics?t=1": "https://pushgateway:9091/metrics",
		"https://git:tok@github.com/org/repo.git":      "https://github.com/org/repo.git",
		"file:///var/lib/slipway/state":                "file:///var/lib/slipway/state",
		"file://~/state":                               "file://~/state",
		"ftp://bucket":                                 "ftp://bucket",
		"https://host?":                                "https://host",
		// Unparsable (a bad escape, a bad port): by text.
		"s3://user:p%zz@bucket?token=t":   "s3://bucket",
		"https://user:pw@host:port/x?tok": "https://host:port/x",
		"git@github.com:org/%zzrepo.git":  "github.com:org/%zzrepo.git",
		"%zz?token=secret":                "%zz",
	} {
		assert.Equal(t, want, mask.URL(in), in)
	}
}

// TestOrigin_KeepsOnlySchemeAndHost: a webhook URL's path is its
// credential, so only the scheme and host are shown.
func TestOrigin_KeepsOnlySchemeAndHost(t *testing.T) {
	assert.Equal(t, "https://hooks.slack.com/…", mask.Origin("https://hooks.slack.com/services/T0/B0/secret"))
	assert.Equal(t, "https://example.com", mask.Origin("https://user:pw@example.com"))
	assert.Equal(t, "https://example.com/…", mask.Origin("https://example.com?sig=x"))
	assert.Equal(t, "<webhook URL>", mask.Origin("not a url"))
}

// TestURL_KeepsAURLWithNothingToRemove: a URL without credentials is
// quoted as it was given ("s3://", not url.URL's "s3:").
func TestURL_KeepsAURLWithNothingToRemove(t *testing.T) {
	for _, raw := range []string{"s3://", "file:///tmp/state", "https://api.pulumi.com", "gs://bucket/prefix"} {
		assert.Equal(t, raw, mask.URL(raw))
	}
	assert.Equal(t, "s3://bucket", mask.URL("s3://bucket?access_key=SECRET"))
}
