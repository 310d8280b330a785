package app

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNotifiersFromEnv_NameTheVariableNotTheSecret: a malformed webhook
// variable is bad input naming the variable, never the URL's path.
func TestNotifiersFromEnv_NameTheVariableNotTheSecret(t *testing.T) {
	const token = "T0001/B0001/supersecrettoken"
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	ns, err := notifiersFromEnv(env())
	require.NoError(t, err)
	assert.Empty(t, ns, "nothing configured, nothing sent")

	ns, err = notifiersFromEnv(env(envSlackWebhook, "https://hooks.slack.com/services/"+token,
		envTeamsWebhook, "https://example.webhook.office.com/webhookb2/"+token,
		envWebhookURL, "http://127.0.0.1:9000/hook", envWebhookSecret, "0123456789abcdef0123",
		envDashboardURL, "https://slipway.example.com"))
	require.NoError(t, err)
	assert.Len(t, ns, 3)

	for name, c := range map[string]struct {
		env  func(string) string
		want string
	}{
		"not a url":        {env(envSlackWebhook, "hooks.slack.com/services/"+token), envSlackWebhook},
		"control char":     {env(envTeamsWebhook, "https://example.com/\x7f"+token), envTeamsWebhook},
		"plain http":       {env(envSlackWebhook, "http://hooks.slack.com/services/"+token), envSlackWebhook},
		"no secret":        {env(envWebhookURL, "https://example.com/hooks/"+token), envWebhookSecret},
		"short secret":     {env(envWebhookURL, "https://example.com/hooks/"+token, envWebhookSecret, "short"), envWebhookSecret},
		"dashboard scheme": {env(envDashboardURL, "ftp://example.com/"+token), envDashboardURL},
	} {
		_, err := notifiersFromEnv(c.env)
		require.Error(t, err, name)
		var ie *InputError
		assert.True(t, errors.As(err, &ie), "%s: bad input", name)
		assert.Contains(t, err.Error(), c.want, name)
		assert.NotContains(t, err.Error(), token, name)
	}
}
