package promtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStart_PrometheusScrapesWhatIsPushed(t *testing.T) {
	s := Start(t)
	s.Push(t, "canary", "promtest_error_rate", 0.25)
	s.WaitFor(t, `promtest_error_rate{job="canary"}`, 0.25)
	s.Push(t, "canary", "promtest_error_rate", 0.5)
	s.WaitFor(t, `promtest_error_rate{job="canary"}`, 0.5)
}

func TestBinary_AMissingToolNamesItsDebianPackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := binary("prometheus-pushgateway", "prometheus-pushgateway")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "apt-get install -y prometheus-pushgateway")
	assert.Contains(t, err.Error(), "Debian package prometheus-pushgateway")
}
