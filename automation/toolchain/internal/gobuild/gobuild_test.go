package gobuild

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLineWriter_SplitsWritesIntoLines(t *testing.T) {
	var got []string
	w := &lineWriter{line: func(l string) { got = append(got, l) }}
	for _, s := range []string{"exam", "ple.com/a\nexample.com/b\n# example.com/c\n./c.go:1:2: undefined", ": x\r\ntail"} {
		_, err := w.Write([]byte(s))
		require.NoError(t, err)
	}
	w.flush()
	assert.Equal(t, []string{"example.com/a", "example.com/b", "# example.com/c", "./c.go:1:2: undefined: x", "tail"}, got)
	var pkgs []string
	for _, l := range got {
		if packageLine.MatchString(l) {
			pkgs = append(pkgs, l)
		}
	}
	assert.Equal(t, []string{"example.com/a", "example.com/b", "tail"}, pkgs)
}

func TestPatch_RefusesWhenTheTextIsNotThereExactlyOnce(t *testing.T) {
	p := Patch{Name: "p", Module: "example.com/m", File: "a.go", Old: "x := 1\n", New: "x := 2\n"}
	got, err := p.Apply("a\nx := 1\nb\n")
	require.NoError(t, err)
	assert.Equal(t, "a\nx := 2\nb\n", got)
	for _, src := range []string{"nothing here\n", "x := 1\nx := 1\n"} {
		_, err := p.Apply(src)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "patch p: a.go of example.com/m")
		assert.Contains(t, err.Error(), "update the patch for this version")
	}
}
