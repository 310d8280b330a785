package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/automation/mask"
)

// maxBody bounds how much of a response the HTTP provider reads.
const maxBody = 1 << 20

// HTTP measures with a GET request. Without JSONField, the value is the
// response's status code, judged by the condition ("result == 200",
// "result < 500"). With JSONField, the response must have a 2xx status and
// the value is the number at that field of its JSON body; a field that is
// absent or null is inconclusive.
type HTTP struct {
	// URL is requested with GET. Credentials in it (user information, a
	// token in the query) are used but never shown.
	URL string
	// JSONField is the dotted path of a number in the JSON body
	// ("data.errorRate"); a path element that is a number indexes an
	// array ("items.0.value"). true and false count as 1 and 0, and a
	// string holding a number is read as that number.
	JSONField string
	// Client sends the request; nil uses a client with no other settings.
	Client *http.Client
	// Timeout bounds one request; zero is DefaultTimeout.
	Timeout time.Duration
}

// Validate checks the URL.
func (h HTTP) Validate() error {
	if err := checkHTTPURL("HTTP.URL", h.URL, "http://canary.example/healthz"); err != nil {
		return err
	}
	if h.Timeout < 0 {
		return fmt.Errorf("HTTP.Timeout is %s; set a positive duration or 0 for %s", h.Timeout, DefaultTimeout)
	}
	return nil
}

// String names the request, without credentials.
func (h HTTP) String() string {
	s := "GET " + mask.URL(h.URL)
	if h.JSONField != "" {
		s += " ." + h.JSONField
	}
	return s
}

// Measure sends the request once.
func (h HTTP) Measure(ctx context.Context) (float64, error) {
	timeout := h.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", mask.URL(h.URL), maskURLError(err))
	}
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, maskURLError(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if h.JSONField == "" {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)) // lets the connection be reused
		return float64(resp.StatusCode), nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, fmt.Errorf("GET %s: status %s, not 2xx: no JSON body to read .%s from", mask.URL(h.URL), resp.Status, h.JSONField)
	}
	var body any
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxBody))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return 0, fmt.Errorf("GET %s: the body is not JSON: %w", mask.URL(h.URL), err)
	}
	return jsonNumber(body, h.JSONField)
}

// jsonNumber reads the number at a dotted path of a decoded JSON document.
func jsonNumber(doc any, path string) (float64, error) {
	v := doc
	for _, key := range strings.Split(path, ".") {
		switch node := v.(type) {
		case map[string]any:
			v = node[key]
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(node) {
				return 0, fmt.Errorf("JSON field %q: %q is not an index of an array of %d elements", path, key, len(node))
			}
			v = node[i]
		default:
			return 0, fmt.Errorf("JSON field %q: %q is inside a %T, not an object or an array", path, key, node)
		}
		if v == nil {
			return 0, fmt.Errorf("JSON field %q is absent or null: %w", path, ErrNoData)
		}
	}
	switch v := v.(type) {
	case json.Number:
		return v.Float64()
	case bool:
		if v {
			return 1, nil
		}
		return 0, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("JSON field %q holds the string %q, not a number", path, v)
		}
		return f, nil
	default:
		return 0, fmt.Errorf("JSON field %q holds a %T, not a number", path, v)
	}
}
