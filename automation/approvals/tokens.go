package approvals

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Token is one named bearer token of the approvals API: a decision made
// with it is recorded under Name.
type Token struct {
	Name   string
	Secret []byte
}

// MinTokenLen is the shortest token secret accepted.
const MinTokenLen = 16

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// Tokens authenticates callers of the approvals API by their bearer
// token. The zero value (or nil) accepts nobody.
type Tokens struct {
	list []namedToken
}

type namedToken struct {
	name string
	sum  [sha256.Size]byte
}

// NewTokens checks the tokens: each name is letters, digits, '_', '.',
// '@' or '-' (at most 64), names and secrets are unique, and each secret is
// at least MinTokenLen bytes.
func NewTokens(ts ...Token) (*Tokens, error) {
	out := &Tokens{}
	names := map[string]bool{}
	secrets := map[[sha256.Size]byte]string{}
	for _, t := range ts {
		if !tokenNameRE.MatchString(t.Name) {
			return nil, fmt.Errorf("approvals: token name %q is invalid; use letters, digits, '_', '.', '@' or '-' (a person or a system: alice, ci-bot)", t.Name)
		}
		if names[strings.ToLower(t.Name)] {
			return nil, fmt.Errorf("approvals: token name %q is given twice; each caller needs a name of its own", t.Name)
		}
		names[strings.ToLower(t.Name)] = true
		if len(t.Secret) < MinTokenLen {
			return nil, fmt.Errorf("approvals: the token of %s is shorter than %d bytes; generate one with: openssl rand -hex 32", t.Name, MinTokenLen)
		}
		sum := sha256.Sum256(t.Secret)
		if other, dup := secrets[sum]; dup {
			return nil, fmt.Errorf("approvals: %s and %s have the same token; give each caller a token of its own", other, t.Name)
		}
		secrets[sum] = t.Name
		out.list = append(out.list, namedToken{name: t.Name, sum: sum})
	}
	return out, nil
}

// Len is how many tokens there are.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.list)
}

// Caller returns the name of the token the request carries as
// "Authorization: Bearer <token>", comparing with every token in constant
// time; ok is false when it carries none of them.
func (t *Tokens) Caller(r *http.Request) (name string, ok bool) {
	if t.Len() == 0 {
		return "", false
	}
	scheme, got, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	for _, nt := range t.list {
		if subtle.ConstantTimeCompare(sum[:], nt.sum[:]) == 1 {
			name, ok = nt.name, true
		}
	}
	return name, ok
}
