package dashboard

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ContentSecurityPolicy is the policy of every response: nothing loads but
// the page's own stylesheet (by hash) and images from the page itself or
// data: URLs; no script runs; no site may frame the dashboard.
var ContentSecurityPolicy = "default-src 'none'; style-src '" + styleHash + "'; img-src 'self' data:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// styleHash is the CSP source of the pages' inline stylesheet.
var styleHash = func() string {
	sum := sha256.Sum256([]byte(styleCSS))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()

// secure wraps h with the security headers, the host check, the per-client
// rate limit and the body size limit, in that order.
func (s *server) secure(lim *limiter, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		if len(s.o.Hosts) > 0 && !slices.Contains(s.o.Hosts, hostOnly(r.Host)) {
			s.log.WarnContext(r.Context(), "dashboard: refused a request for another host", "host", r.Host, "client", clientIP(r))
			http.Error(w, "this server does not serve that host", http.StatusMisdirectedRequest)
			return
		}
		if ok, wait := lim.allow(clientIP(r)); !ok {
			hd.Set("Retry-After", strconv.Itoa(wait))
			http.Error(w, "too many requests; retry later", http.StatusTooManyRequests)
			return
		}
		if r.ContentLength > s.o.MaxBody {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			// Read the whole (bounded) body first, so that every handler
			// sees a body within the limit and a larger one is 413 whatever
			// the handler does with its read error.
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxBody))
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			case err != nil:
				http.Error(w, "reading the request body failed", http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		h.ServeHTTP(w, r)
	})
}

// guardAPI refuses a state-changing request (any method but GET, HEAD and
// OPTIONS) without the bearer token, whatever the API handler would do.
func (s *server) guardAPI(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if _, ok := s.o.Tokens.Caller(r); !ok {
				s.log.WarnContext(r.Context(), "dashboard: refused an API request without a valid bearer token", "method", r.Method, "path", r.URL.Path, "client", clientIP(r))
				w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
				http.Error(w, "a valid bearer token is required", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// clientIP is the address the request came from. X-Forwarded-For is not
// trusted: anyone could send it.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// hostOnly strips the port of a Host header.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// limiter is a token bucket per client address. Buckets unused for a
// while are dropped.
type limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	clients map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// idle is how long an unused bucket is kept; past maxClients buckets
// the unused ones are dropped at once.
const (
	idle       = 10 * time.Minute
	maxClients = 10000
)

func newLimiter(r rate.Limit, burst int, now func() time.Time) *limiter {
	return &limiter{rate: r, burst: burst, now: now, clients: map[string]*bucket{}}
}

// allow takes a token from the client's bucket; when none is left it
// returns false and the seconds until one is.
func (l *limiter) allow(client string) (bool, int) {
	if l.rate == rate.Inf {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > idle || len(l.clients) >= maxClients {
		for k, b := range l.clients {
			if now.Sub(b.seen) > idle || len(l.clients) >= maxClients {
				delete(l.clients, k)
			}
		}
		l.swept = now
	}
	b := l.clients[client]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.clients[client] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, 60
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, max(1, int(math.Ceil(d.Seconds())))
	}
	return true, 0
}
