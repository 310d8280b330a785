package automation_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation"
)

func TestProgramValidate_NamesTheField(t *testing.T) {
	err := automation.Program{Project: "bad name", Stack: "", Run: nil}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `Program.Project "bad name" is invalid`)
	assert.Contains(t, err.Error(), `Program.Stack "" is invalid`)
	assert.Contains(t, err.Error(), "Program.Run is nil")
	assert.ErrorContains(t, automation.ValidateBackend("ftp://x"), `backend URL "ftp://x" is not supported`)
}
