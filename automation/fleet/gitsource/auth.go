package gitsource

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"github.com/slipwayhq/slipway/automation/mask"
)

// Keys of a credentials Secret read by [AuthFromSecret].
const (
	// KeyUsername is the HTTP user name (or, with KeyIdentity, the SSH
	// user, which otherwise comes from the URL or is "git").
	KeyUsername = "username"
	// KeyPassword is the HTTP password or token (or, with KeyIdentity, the
	// passphrase of the private key).
	KeyPassword = "password"
	// KeyBearerToken is an HTTP bearer token.
	KeyBearerToken = "bearerToken"
	// KeyIdentity is a PEM-encoded SSH private key.
	KeyIdentity = "identity"
	// KeyKnownHosts is the known_hosts file that names the SSH server's
	// host keys (as printed by ssh-keyscan).
	KeyKnownHosts = "known_hosts"
)

// expectedKeys says which combinations AuthFromSecret accepts.
const expectedKeys = `username and password (HTTP basic auth; a token goes in password), ` +
	`bearerToken (HTTP bearer token), or identity and known_hosts (SSH; password, if set, is the key's passphrase)`

// AuthFromSecret builds the credentials for [Source].Auth from the data
// of a Kubernetes Secret:
//
//   - username and password: HTTP basic auth (a token goes in password);
//   - bearerToken: HTTP bearer token auth;
//   - identity and known_hosts: SSH public key auth, with password (if
//     set) as the key's passphrase and username (if set) as the SSH user.
//     The server's host key is checked against known_hosts; a Secret with
//     an identity but no known_hosts is refused, as host keys are never
//     accepted unchecked.
//
// Empty values count as absent, and identity.pub is ignored. No data gives
// nil (no authentication). Any other combination is an error that names
// the keys expected; errors never contain the values.
func AuthFromSecret(data map[string][]byte) (transport.AuthMethod, error) {
	has := func(k string) bool { return len(data[k]) > 0 }
	var present []string
	for k, v := range data {
		if len(v) > 0 {
			present = append(present, k)
		}
	}
	slices.Sort(present)
	if len(present) == 0 {
		return nil, nil
	}
	switch {
	case has(KeyIdentity):
		if has(KeyBearerToken) {
			return nil, fmt.Errorf("the credentials Secret has both identity (SSH) and bearerToken (HTTP): keep the one for the URL's scheme")
		}
		if !has(KeyKnownHosts) {
			return nil, fmt.Errorf("the credentials Secret has an SSH identity but no known_hosts: add known_hosts with the server's host key (ssh-keyscan <host> prints it); host keys are never accepted unchecked")
		}
		return newSSHAuth(string(data[KeyUsername]), data[KeyIdentity], string(data[KeyPassword]), data[KeyKnownHosts])
	case has(KeyKnownHosts):
		return nil, fmt.Errorf("the credentials Secret has known_hosts but no identity: add identity (the SSH private key), or remove known_hosts for HTTP credentials")
	case has(KeyBearerToken):
		if has(KeyUsername) || has(KeyPassword) {
			return nil, fmt.Errorf("the credentials Secret has bearerToken and username/password: keep either bearerToken, or username and password")
		}
		return &githttp.TokenAuth{Token: string(data[KeyBearerToken])}, nil
	case has(KeyUsername) && has(KeyPassword):
		return &githttp.BasicAuth{Username: string(data[KeyUsername]), Password: string(data[KeyPassword])}, nil
	case has(KeyPassword):
		return nil, fmt.Errorf("the credentials Secret has password but no username: add username (with a token as password, most hosts accept any name, such as git)")
	case has(KeyUsername):
		return nil, fmt.Errorf("the credentials Secret has username but no password: add password (or a token as password)")
	default:
		return nil, fmt.Errorf("the credentials Secret has none of the keys expected: %s; it has: %s", expectedKeys, strings.Join(present, ", "))
	}
}

// sshAuth is SSH public key auth whose host keys come from a known_hosts
// file; sshForEndpoint fits it to a URL.
type sshAuth struct {
	*gitssh.PublicKeys
	userSet    bool
	passphrase string
	algorithms func(hostWithPort string) []string
}

func newSSHAuth(user string, identity []byte, passphrase string, knownHosts []byte) (*sshAuth, error) {
	userSet := user != ""
	if !userSet {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeys(user, identity, passphrase)
	if err != nil {
		msg := mask.New(passphrase).String(err.Error())
		return nil, fmt.Errorf("the identity in the credentials Secret is not a usable SSH private key (%s): give a PEM or OpenSSH private key, and its passphrase as password if it has one", msg)
	}
	algorithms, err := applyKnownHosts(keys, knownHosts)
	if err != nil {
		return nil, err
	}
	return &sshAuth{PublicKeys: keys, userSet: userSet, passphrase: passphrase, algorithms: algorithms}, nil
}

// applyKnownHosts makes keys check host keys against a known_hosts file
// (and never against the machine's own), and returns the function that
// tells the host key algorithms known for a host:port.
func applyKnownHosts(keys *gitssh.PublicKeys, data []byte) (func(hostWithPort string) []string, error) {
	// The parser reads only files.
	f, err := os.CreateTemp("", "slipway-known-hosts-*")
	if err != nil {
		return nil, fmt.Errorf("writing known_hosts to a temporary file: %w", err)
	}
	name := f.Name()
	defer func() { _ = os.Remove(name) }()
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("writing known_hosts to a temporary file: %w", werr)
	}
	db, err := gitssh.NewKnownHostsDb(name)
	if err != nil {
		return nil, fmt.Errorf("the known_hosts in the credentials Secret does not parse (%s): give lines as ssh-keyscan prints them", strings.ReplaceAll(err.Error(), name, "known_hosts"))
	}
	keys.HostKeyCallback = db.HostKeyCallback()
	return db.HostKeyAlgorithms, nil
}

// sshForEndpoint fits SSH credentials from AuthFromSecret to the URL: the
// URL's user (unless the Secret named one) and the host key algorithms
// that known_hosts has for the host.
func sshForEndpoint(a gitssh.AuthMethod, u *url.URL) transport.AuthMethod {
	sa, ok := a.(*sshAuth)
	if !ok {
		return a
	}
	keys := *sa.PublicKeys
	if !sa.userSet && u.User != nil && u.User.Username() != "" {
		keys.User = u.User.Username()
	}
	keys.HostKeyAlgorithms = sa.algorithms(hostWithPort(u))
	c := *sa
	c.PublicKeys = &keys
	return &c
}

var _ gitssh.AuthMethod = (*sshAuth)(nil)
