package input

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// envVarRE is an environment variable's name.
var envVarRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// secretSource reads the secret flags of one command.
type secretSource struct {
	g         *app.Globals
	stdin     io.Reader
	stdinUsed string // the flag that read standard input
	out       map[string]string
	from      map[string]string // key -> the flag that gave it, for messages
}

// readSecrets collects --secret, --secret-env and --secrets-file into one
// map, refusing empty or unmaskable values, keys given twice and a second
// reader of standard input. Error messages name the flag and the key,
// never a value. The values are added to the run's masked secrets.
func (f *EnvFlags) readSecrets(g *app.Globals) (map[string]string, error) {
	s := &secretSource{g: g, stdin: g.In, out: map[string]string{}, from: map[string]string{}}
	for _, p := range f.secrets {
		if err := s.secret(p); err != nil {
			return nil, err
		}
	}
	for _, p := range f.secretEnv {
		if err := s.env(p); err != nil {
			return nil, err
		}
	}
	for _, p := range f.secretsFiles {
		if err := s.file(p); err != nil {
			return nil, err
		}
	}
	vals := make([]string, 0, len(s.out))
	for _, k := range slices.Sorted(maps.Keys(s.out)) {
		vals = append(vals, s.out[k])
	}
	g.AddSecrets(vals...)
	return s.out, nil
}

// add records one secret from flag.
func (s *secretSource) add(flag, key, value string) error {
	if prev, dup := s.from[key]; dup {
		return app.BadInput("secret %s is given twice (%s and %s); give each key once", key, prev, flag)
	}
	if value == "" {
		return app.BadInput("%s: secret %s is empty; give its value (leave the key out to keep the stack's)", flag, key)
	}
	if err := mask.Check(flag+": secret "+key, value); err != nil {
		return app.BadInput("%v", err)
	}
	s.out[key], s.from[key] = value, flag
	return nil
}

// secret reads one --secret KEY=VALUE|@PATH|@-.
func (s *secretSource) secret(p string) error {
	k, v, ok := strings.Cut(p, "=")
	if !ok || k == "" {
		// The text may be a value given without its key: never echo it.
		return app.BadInput("--secret: use KEY=@FILE, KEY=@- (standard input) or KEY=VALUE (a value on the command line is visible to other users in the process list)")
	}
	flag := "--secret " + k
	path, fromFile := strings.CutPrefix(v, "@")
	switch {
	case v == "":
		return app.BadInput("--secret %q has an empty value; give KEY=@FILE, KEY=@- or KEY=VALUE (leave the flag out to keep the stack's)", k+"=")
	case !fromFile:
		fmt.Fprintf(s.g.Errw, "%s: warning: --secret %s=VALUE puts the value in the process list and shell history; use %s=@FILE, --secret-env %s=VAR or --secrets-file\n",
			s.g.Config.Name, k, k, k)
		return s.add(flag, k, v)
	case path == "-":
		b, err := s.readStdin(flag + "=@-")
		if err != nil {
			return err
		}
		return s.add(flag+"=@-", k, trimNewline(string(b)))
	case path == "":
		return app.BadInput("--secret %s=@ names no file; use %s=@PATH or %s=@- for standard input", k, k, k)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return app.BadInput("--secret %s=@%s: cannot read the file (%v); give a readable file holding the value", k, path, errors.Unwrap(err))
	}
	return s.add(flag+"=@"+path, k, trimNewline(string(b)))
}

// env reads one --secret-env KEY=VAR and removes VAR from the environment.
func (s *secretSource) env(p string) error {
	k, name, ok := strings.Cut(p, "=")
	if !ok || k == "" || !envVarRE.MatchString(name) {
		return app.BadInput("--secret-env %q: use KEY=VAR, VAR the name of an environment variable holding the value, e.g. API_TOKEN=CI_API_TOKEN", p)
	}
	flag := "--secret-env " + p
	v, set := os.LookupEnv(name)
	if !set || v == "" {
		return app.BadInput("%s: $%s is not set or empty; export it (from the CI system's secret store) before running %s", flag, name, s.g.Config.Name)
	}
	// No process Slipway starts (engine, providers, analyzer, builds)
	// inherits the value.
	if err := os.Unsetenv(name); err != nil {
		return fmt.Errorf("%s: removing $%s from the environment: %w", flag, name, err)
	}
	return s.add(flag, k, v)
}

// file reads one --secrets-file PATH|-: a JSON object of strings, or dotenv.
func (s *secretSource) file(path string) error {
	flag := "--secrets-file " + path
	var b []byte
	var err error
	switch path {
	case "":
		return app.BadInput("--secrets-file names no file; give a JSON or dotenv file, or - for standard input")
	case "-":
		if b, err = s.readStdin(flag); err != nil {
			return err
		}
	default:
		if b, err = os.ReadFile(path); err != nil {
			return app.BadInput("%s: cannot read the file (%v); give a JSON object of strings or dotenv KEY=VALUE lines", flag, errors.Unwrap(err))
		}
	}
	kv, err := parseSecrets(b)
	if err != nil {
		return app.BadInput("%s: %v", flag, err)
	}
	if len(kv) == 0 {
		return app.BadInput("%s holds no secret; give a JSON object of strings or dotenv KEY=VALUE lines", flag)
	}
	for _, e := range kv {
		if err := s.add(flag, e[0], e[1]); err != nil {
			return err
		}
	}
	return nil
}

// readStdin reads standard input once; a second flag reading it is refused.
func (s *secretSource) readStdin(flag string) ([]byte, error) {
	if s.stdinUsed != "" {
		return nil, app.BadInput("%s and %s both read standard input; give one of them a file", s.stdinUsed, flag)
	}
	s.stdinUsed = flag
	if s.stdin == nil {
		return nil, app.BadInput("%s: no standard input to read", flag)
	}
	b, err := io.ReadAll(s.stdin)
	if err != nil {
		return nil, app.BadInput("%s: reading standard input: %v", flag, err)
	}
	return b, nil
}

// parseSecrets reads a JSON object of strings or dotenv lines, in order.
// Errors name keys and line numbers, never values.
func parseSecrets(b []byte) ([][2]string, error) {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(t, &m); err != nil {
			return nil, errors.New("is not a JSON object of strings (it starts with '{'); fix its syntax")
		}
		var out [][2]string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			var v string
			if err := json.Unmarshal(m[k], &v); err != nil {
				return nil, fmt.Errorf("the value of %s is not a JSON string; quote it", k)
			}
			out = append(out, [2]string{k, v})
		}
		return out, nil
	}
	var out [][2]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("line %d is not KEY=VALUE (nor a # comment)", n)
		}
		v = strings.TrimSpace(v)
		switch {
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			u, err := strconv.Unquote(v)
			if err != nil {
				return nil, fmt.Errorf("line %d (%s): the double-quoted value has a bad escape", n, k)
			}
			v = u
		case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
			v = v[1 : len(v)-1]
		}
		out = append(out, [2]string{k, v})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading it: %v", err)
	}
	return out, nil
}

// trimNewline drops one trailing newline (as `echo` and editors leave).
func trimNewline(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}
