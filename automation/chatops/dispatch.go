package chatops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DispatcherOptions tune a Dispatcher; the zero value takes the defaults.
type DispatcherOptions struct {
	// Attempts per event and notifier (default 4).
	Attempts int
	// Backoff is the first retry's delay (default 500 ms); each retry
	// doubles it, with jitter, up to MaxBackoff (default 10 s). A server's
	// Retry-After is honoured up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// Timeout bounds each attempt (default 5 s), so a server that hangs
	// holds nothing.
	Timeout time.Duration
	// QueueSize is each notifier's queue (default 100); an event that finds
	// it full is dropped with a warning.
	QueueSize int
	// Logger gets the warnings (default slog.Default()). Messages name the
	// notifier by its host only.
	Logger *slog.Logger
	// DashboardURL is the base of the dashboard links: an event without a
	// link gets <DashboardURL>/env/<project>/<environment>.
	DashboardURL string
	// CIURL is the CI run's link (see CIRunURL) for events without one.
	CIURL string
}

// Stats count a Dispatcher's outcomes (per notifier and event).
type Stats struct {
	// Attempts is every delivery attempt made.
	Attempts int64
	// Delivered events: an attempt succeeded.
	Delivered int64
	// Failed events: every attempt failed, or the error was not retryable.
	Failed int64
	// Dropped events: the queue was full or the Dispatcher closed.
	Dropped int64
}

// Dispatcher delivers events to notifiers in the background. It is itself
// a Notifier whose Notify never blocks: each notifier has a bounded queue
// and a worker that retries with exponential back-off and jitter, each
// attempt under a timeout. Failures are logged, never returned to the
// run. Close flushes the queues.
type Dispatcher struct {
	o       DispatcherOptions
	log     *slog.Logger
	workers []*worker
	ctx     context.Context // canceled when Close gives up
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.RWMutex
	closed bool

	attempts, delivered, failed, dropped atomic.Int64
}

type worker struct {
	n     Notifier
	name  string
	queue chan Event
}

// NewDispatcher starts a worker for each notifier (nil ones are skipped).
func NewDispatcher(o DispatcherOptions, ns ...Notifier) *Dispatcher {
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = o.Backoff
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 100
	}
	d := &Dispatcher{o: o, log: o.Logger}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for _, n := range ns {
		if n == nil {
			continue
		}
		w := &worker{n: n, name: notifierName(n), queue: make(chan Event, o.QueueSize)}
		d.workers = append(d.workers, w)
		d.wg.Add(1)
		go d.run(w)
	}
	return d
}

// notifierName names a notifier for logs (its String, which for Slipway's
// notifiers omits the URL's path, or its type).
func notifierName(n Notifier) string {
	if s, ok := n.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", n)
}

// Notify fills the event's links, time and delivery ID, queues it for every notifier
// and returns at once; it returns nil even when a full queue dropped it
// (the drop is logged and counted). ctx is not used: delivery outlives
// the caller's context until Close.
func (d *Dispatcher) Notify(_ context.Context, e Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Links.Dashboard == "" && d.o.DashboardURL != "" && e.Project != "" && e.Environment != "" {
		e.Links.Dashboard = DashboardLink(d.o.DashboardURL, e.Project, e.Environment)
	}
	if e.Links.CI == "" {
		e.Links.CI = d.o.CIURL
	}
	if e.Delivery == "" {
		// One ID for every attempt: a receiver that got a delivery whose
		// answer was lost recognises the retry.
		e.Delivery = NewDeliveryID()
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, w := range d.workers {
		if d.closed {
			d.dropped.Add(1)
			d.log.Warn("chatops: notification dropped: the dispatcher is closed", "notifier", w.name, "kind", e.Kind)
			continue
		}
		select {
		case w.queue <- e:
		default:
			d.dropped.Add(1)
			d.log.Warn("chatops: notification dropped: queue full", "notifier", w.name, "kind", e.Kind, "queue", d.o.QueueSize)
		}
	}
	return nil
}

// DashboardLink is the dashboard page of an environment: <base>/env/<project>/<environment>.
func DashboardLink(base, project, environment string) string {
	return strings.TrimRight(base, "/") + "/env/" + url.PathEscape(project) + "/" + url.PathEscape(environment)
}

// Stats returns the counts so far.
func (d *Dispatcher) Stats() Stats {
	return Stats{Attempts: d.attempts.Load(), Delivered: d.delivered.Load(), Failed: d.failed.Load(), Dropped: d.dropped.Load()}
}

// Close stops accepting events and waits until the queued ones are
// delivered (or have failed), or ctx ends: then the attempts in flight are
// canceled, the rest is dropped, and ctx's error is returned. Close is
// safe to call more than once.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		for _, w := range d.workers {
			close(w.queue)
		}
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		return fmt.Errorf("chatops: notifications not delivered before shutdown: %w", ctx.Err())
	}
}

// run delivers one notifier's queue.
func (d *Dispatcher) run(w *worker) {
	defer d.wg.Done()
	for e := range w.queue {
		if d.ctx.Err() != nil {
			d.dropped.Add(1)
			continue
		}
		d.deliver(w, e)
	}
}

// deliver makes up to Attempts attempts.
func (d *Dispatcher) deliver(w *worker, e Event) {
	var err error
	for i := 1; i <= d.o.Attempts; i++ {
		d.attempts.Add(1)
		ctx, cancel := context.WithTimeout(d.ctx, d.o.Timeout)
		err = w.n.Notify(ctx, e)
		cancel()
		if err == nil {
			d.delivered.Add(1)
			return
		}
		if d.ctx.Err() != nil || !Retryable(err) || i == d.o.Attempts {
			break
		}
		wait := d.backoff(i)
		var de *DeliveryError
		if errors.As(err, &de) && de.RetryAfter > 0 {
			wait = min(de.RetryAfter, d.o.MaxBackoff)
		}
		d.log.Debug("chatops: delivery failed, retrying", "notifier", w.name, "kind", e.Kind, "attempt", i, "in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
		}
		if d.ctx.Err() != nil {
			break
		}
	}
	d.failed.Add(1)
	d.log.Warn("chatops: notification not delivered", "notifier", w.name, "kind", e.Kind,
		"project", e.Project, "environment", e.Environment, "error", err)
}

// backoff is the delay after attempt i (1-based): Backoff·2^(i-1), capped
// at MaxBackoff, with "equal jitter" (between half and all of it).
func (d *Dispatcher) backoff(i int) time.Duration {
	b := d.o.Backoff
	for ; i > 1 && b < d.o.MaxBackoff; i-- {
		b *= 2
	}
	b = min(b, d.o.MaxBackoff)
	half := b / 2
	return half + rand.N(b-half+1)
}
