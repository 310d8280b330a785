package mask

import (
	"net/url"
	"strings"
)

// URL returns raw without the parts of a URL that carry credentials: its
// user information (a password) and its query (tokens, signatures), for
// messages, logs and Events. A string that does not parse as a URL loses
// them by text: everything up to the last "@" after the scheme, and
// everything from the first "?".
func URL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.User == nil && u.RawQuery == "" && !u.ForceQuery {
			return raw // nothing to remove: the URL as it was given
		}
		u.User, u.RawQuery, u.ForceQuery = nil, "", false
		return u.String()
	}
	s := raw
	if i := strings.LastIndex(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			s = s[:j+3] + s[i+1:]
		} else if j < 0 {
			s = s[i+1:]
		}
	}
	s, _, _ = strings.Cut(s, "?")
	return s
}

// Origin returns only a URL's scheme and host ("/…" when a path or query
// followed), for URLs whose path is the credential, such as chat webhook
// URLs; "<webhook URL>" when raw is not a URL with a host.
func Origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<webhook URL>"
	}
	out := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		out += "/…"
	}
	return out
}
