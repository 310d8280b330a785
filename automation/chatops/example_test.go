package chatops_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/slipwayhq/slipway/automation/chatops"
)

// A Dispatcher in front of the chat channels: Notify never blocks the
// run; Close flushes at exit.
func ExampleNewDispatcher() {
	d := chatops.NewDispatcher(chatops.DispatcherOptions{
		DashboardURL: "https://slipway.example.com",
		CIURL:        chatops.CIRunURL(os.Getenv),
	}, chatops.Slack(os.Getenv("SLIPWAY_SLACK_WEBHOOK_URL")))
	_ = d.Notify(context.Background(), chatops.Event{Kind: chatops.RunSucceeded, Project: "shop",
		Environment: "dev", Operation: "up", Summary: "up of dev: 3 changes in 2.1s", Changes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = d.Close(ctx)
}

// A receiver of the generic webhook checks each delivery's signature on
// the raw body before trusting it, and refuses a delivery it saw before.
func ExampleVerifyWebhook() {
	secret := []byte(os.Getenv("SLIPWAY_WEBHOOK_SECRET"))
	replays := chatops.NewReplays(0)
	http.HandleFunc("POST /slipway", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		err = replays.Verify(r.Header, body, secret, time.Now())
		if errors.Is(err, chatops.ErrReplayed) {
			http.Error(w, "already received", http.StatusConflict)
			return
		}
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}
