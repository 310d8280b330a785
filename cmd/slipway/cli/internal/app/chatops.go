package app

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/automation"
	"github.com/slipwayhq/slipway/automation/approvals"
	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/automation/mask"
	"github.com/slipwayhq/slipway/automation/outcome"
)

// Chat notifications are configured from the environment only: webhook
// URLs carry their credential in the path, so they never go on a command
// line (where ps and CI logs show them).
const (
	envSlackWebhook  = "SLIPWAY_SLACK_WEBHOOK_URL"
	envTeamsWebhook  = "SLIPWAY_TEAMS_WEBHOOK_URL"
	envWebhookURL    = "SLIPWAY_WEBHOOK_URL"
	envWebhookSecret = "SLIPWAY_WEBHOOK_SECRET"
	envDashboardURL  = "SLIPWAY_DASHBOARD_URL"
)

// notifyFlush bounds how long the end of a run waits for notifications.
const notifyFlush = 10 * time.Second

// chatState is the run's notifier, built once from the environment.
type chatState struct {
	once sync.Once
	d    *chatops.Dispatcher
	err  error
}

// notifier returns the run's notifier (a chatops.Dispatcher over the
// configured Slack, Teams and webhook channels), or nil when none is
// configured. A malformed variable is a bad-input error naming it, without
// the URL's path. The Dispatcher is flushed when the run ends
// (CloseNotifier).
func (g *Globals) notifier() (chatops.Notifier, error) {
	c := &g.chat
	c.once.Do(func() {
		var ns []chatops.Notifier
		ns, c.err = notifiersFromEnv(os.Getenv)
		if c.err != nil || len(ns) == 0 {
			return
		}
		for _, k := range []string{envSlackWebhook, envTeamsWebhook, envWebhookURL, envWebhookSecret} {
			if v := os.Getenv(k); v != "" {
				g.AddSecrets(v) // masked should one ever reach an output
			}
		}
		c.d = chatops.NewDispatcher(chatops.DispatcherOptions{
			DashboardURL: os.Getenv(envDashboardURL),
			CIURL:        chatops.CIRunURL(os.Getenv),
		}, ns...)
	})
	if c.err != nil || c.d == nil {
		return nil, c.err
	}
	return c.d, nil
}

// CloseNotifier delivers the queued notifications, waiting at most
// notifyFlush; what is still undelivered then is dropped with a warning.
func (g *Globals) CloseNotifier() {
	if g.chat.d == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), notifyFlush)
	defer cancel()
	if err := g.chat.d.Close(ctx); err != nil {
		fmt.Fprintf(g.Errw, "%s: warning: %s\n", g.Config.Name, g.Mask(err.Error()))
	}
}

// notifiersFromEnv builds the notifiers the environment configures.
func notifiersFromEnv(getenv func(string) string) ([]chatops.Notifier, error) {
	var ns []chatops.Notifier
	if v := getenv(envSlackWebhook); v != "" {
		if err := checkWebhookURL(envSlackWebhook, v); err != nil {
			return nil, err
		}
		ns = append(ns, chatops.Slack(v))
	}
	if v := getenv(envTeamsWebhook); v != "" {
		if err := checkWebhookURL(envTeamsWebhook, v); err != nil {
			return nil, err
		}
		ns = append(ns, chatops.Teams(v))
	}
	if v := getenv(envWebhookURL); v != "" {
		if err := checkWebhookURL(envWebhookURL, v); err != nil {
			return nil, err
		}
		secret := getenv(envWebhookSecret)
		if len(secret) < 16 {
			return nil, BadInput("%s is set but %s is missing or shorter than 16 bytes; receivers verify each delivery's signature with it (e.g. openssl rand -hex 32)",
				envWebhookURL, envWebhookSecret)
		}
		ns = append(ns, chatops.Webhook(v, []byte(secret)))
	}
	if v := getenv(envDashboardURL); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, BadInput("%s %q is not an http(s) URL; give the dashboard's base, e.g. https://slipway.example.com", envDashboardURL, mask.Origin(v))
		}
	}
	return ns, nil
}

// checkWebhookURL requires an https URL (http only to a loopback host)
// and names the variable, never the URL's secret path.
func checkWebhookURL(name, v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return BadInput("%s is not an http(s) URL (%s); set it to the webhook URL the chat service gave you", name, mask.Origin(v))
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return BadInput("%s uses http to %s; webhook URLs carry their credential, so use https (http only to localhost)", name, u.Host)
	}
	return nil
}

func loopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

// approvalPoll is how often a waiting promotion reads its approval request.
const approvalPoll = 2 * time.Second

// ApprovalGate returns the approval a promotion stage waits for (at most
// wait): a pending request in the engine's store, announced in the chat
// and on stderr, decided through `slipway serve`, and accepted only when
// its decision verifies with pub (serve's public key). requestedBy names
// who may not approve it. It returns a nil gate when wait is 0; close
// releases the store.
func (g *Globals) ApprovalGate(ctx context.Context, e *automation.Engine, wait time.Duration, pub ed25519.PublicKey, requestedBy []string) (gate func(context.Context, string, *outcome.Result) error, closeFn func(), err error) {
	if wait <= 0 {
		return nil, func() {}, nil
	}
	st, err := e.Store(ctx)
	if err != nil {
		return nil, nil, err
	}
	n, err := g.notifier()
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	announce := chatops.NotifierFunc(func(ctx context.Context, ev chatops.Event) error {
		if ev.Approval != nil {
			fmt.Fprintf(g.Errw, "%s: stage %s waits up to %s for approval (request %s): approve it from the chat, or POST {\"decision\":\"approve\"} to /api/approvals/%s on slipway serve\n",
				g.Config.Name, ev.Approval.Stage, wait, ev.Approval.ID, ev.Approval.ID)
		}
		if n != nil {
			return n.Notify(ctx, ev)
		}
		return nil
	})
	inner := approvals.Gate(approvals.New(st, approvals.WithVerifyKey(pub)), announce, approvalPoll, approvals.RequestedBy(requestedBy...))
	gate = func(ctx context.Context, stage string, preview *outcome.Result) error {
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		return inner(wctx, stage, preview)
	}
	return gate, func() { _ = st.Close() }, nil
}
