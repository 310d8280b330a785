package outcome

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/slipwayhq/slipway/policypacks"
)

// Collector gathers per-resource steps and policy findings from the
// engine's event stream of one operation. Hand Events to the operation,
// and call Result once it returned.
type Collector struct {
	ch   chan events.EngineEvent
	mu   sync.Mutex
	res  []ResourceChange
	pol  []policypacks.Finding
	seen map[string]int
	on   func(events.EngineEvent)
	// started records when each step began, by URN.
	started map[string]time.Time
	// stop tells the reader that the operation returned; handled is closed
	// when the reader will call on no more; exited when the reader ended.
	stop, handled, exited chan struct{}
}

// drainWindow bounds how long the reader keeps discarding events that
// arrive after the operation returned (the Automation API's event server
// may still be shutting down); none of them reaches OnEvent.
const drainWindow = 2 * time.Second

// NewCollector starts a collector that also hands every event to on (when
// not nil), until the operation returned.
func NewCollector(on func(events.EngineEvent)) *Collector {
	c := &Collector{ch: make(chan events.EngineEvent), seen: map[string]int{}, on: on, started: map[string]time.Time{},
		stop: make(chan struct{}), handled: make(chan struct{}), exited: make(chan struct{})}
	go c.read()
	return c
}

// Events is the stream to give the operation (its EventStreams option).
func (c *Collector) Events() chan<- events.EngineEvent { return c.ch }

// read handles events until the engine closes the stream or the operation
// returns, then discards stragglers for at most drainWindow and exits.
func (c *Collector) read() {
	defer close(c.exited)
	defer func() {
		select {
		case <-c.handled:
		default:
			close(c.handled)
		}
	}()
	for {
		select {
		case ev, ok := <-c.ch:
			if !ok {
				return
			}
			c.handle(ev)
		case <-c.stop:
			// Whatever was sent before the operation returned has been
			// received: sends are unbuffered.
			close(c.handled)
			t := time.NewTimer(drainWindow)
			defer t.Stop()
			for {
				select {
				case _, ok := <-c.ch:
					if !ok {
						return
					}
				case <-t.C:
					return
				}
			}
		}
	}
}

func (c *Collector) handle(ev events.EngineEvent) {
	if c.on != nil {
		c.on(ev)
	}
	if f, ok := PolicyFinding(ev); ok {
		c.mu.Lock()
		c.pol = append(c.pol, f)
		c.mu.Unlock()
		return
	}
	var md *apitype.StepEventMetadata
	var took time.Duration
	var began time.Time
	switch {
	case ev.ResourcePreEvent != nil:
		md = &ev.ResourcePreEvent.Metadata
		began = time.Now()
		c.started[md.URN] = began
	case ev.ResOutputsEvent != nil:
		md = &ev.ResOutputsEvent.Metadata
		if t, ok := c.started[md.URN]; ok {
			began, took = t, time.Since(t)
		}
	}
	if md == nil || md.URN == "" {
		return
	}
	c.add(md, began, took)
}

func (c *Collector) add(md *apitype.StepEventMetadata, began time.Time, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rc := ResourceChange{URN: md.URN, Type: md.Type, Op: string(md.Op), Diffs: md.Diffs, Started: began, Duration: took}
	if len(md.DetailedDiff) > 0 {
		rc.DetailedDiff = map[string]string{}
		for k, d := range md.DetailedDiff {
			rc.DetailedDiff[k] = string(d.Kind)
		}
	}
	if md.Old != nil && md.New != nil && (md.Op == apitype.OpUpdate || md.Op == apitype.OpRefresh) {
		rc.Properties = diffProperties(md.Old.Outputs, md.New.Outputs)
		if len(rc.DetailedDiff) > 0 {
			// The engine's diff honours ignoreChanges (an autoscaler's
			// replicas, say): a recorded value that moved counts only where
			// the engine diffs it. Fields added out of band are reported.
			rc.Properties = slices.DeleteFunc(rc.Properties, func(p PropertyChange) bool {
				return p.Expected != nil && !underAny(p.Path, rc.DetailedDiff)
			})
		}
	}
	if len(rc.Diffs) == 0 {
		rc.Diffs = topLevel(rc.Properties)
		for k := range rc.DetailedDiff {
			if top := topLevel([]PropertyChange{{Path: k}})[0]; !slices.Contains(rc.Diffs, top) {
				rc.Diffs = append(rc.Diffs, top)
			}
		}
		slices.Sort(rc.Diffs)
	}
	key := md.URN + "\x00" + string(md.Op)
	// A refresh announces each resource ("refresh"), then reports what it
	// found ("same" or "update"): keep only the finding.
	if i, ok := c.seen[md.URN+"\x00"+string(apitype.OpRefresh)]; ok && md.Op != apitype.OpRefresh {
		delete(c.seen, md.URN+"\x00"+string(apitype.OpRefresh))
		c.seen[key] = i
		c.res[i] = rc
		return
	}
	if i, ok := c.seen[key]; ok {
		// The outputs event repeats the pre event; keep the richer diff.
		if len(rc.Diffs) > 0 || rc.DetailedDiff != nil || rc.Properties != nil {
			c.res[i] = rc
		}
		if took > 0 {
			c.res[i].Started, c.res[i].Duration = began, took
		}
		return
	}
	c.seen[key] = len(c.res)
	c.res = append(c.res, rc)
}

// underAny reports whether path is one of keys, or a parent or child of one.
func underAny(path string, keys map[string]string) bool {
	related := func(a, b string) bool {
		return a == b || strings.HasPrefix(b, a+".") || strings.HasPrefix(b, a+"[")
	}
	for k := range keys {
		// The engine quotes keys that hold dots: data["a.b"] is data.a.b here.
		k = strings.NewReplacer(`["`, ".", `"]`, "").Replace(k)
		if related(path, k) || related(k, path) {
			return true
		}
	}
	return false
}

// wait is called once the operation returned: it waits until the reader
// will call OnEvent no more and returns the steps. The reader goroutine ends
// on its own shortly after (see drainWindow).
func (c *Collector) wait() []ResourceChange {
	close(c.stop)
	<-c.handled
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.res)
}

// Result is called once, when the operation returned: it waits until no
// more events are handed on, and returns the operation's Result with the
// steps and policy findings collected, the given summary, and the time
// since start as its Duration.
func (c *Collector) Result(op, project, stack string, start time.Time, summary map[string]int) *Result {
	res := c.wait()
	c.mu.Lock()
	pol := slices.Clone(c.pol)
	c.mu.Unlock()
	return &Result{Operation: op, Project: project, Stack: stack, Summary: summary, Resources: res,
		Policy: pol, Duration: time.Since(start)}
}

// PolicyFinding turns the engine's policy event into a finding. A check the
// analyzer could not run (policypacks.UnverifiedPolicy, reported as
// "<policy>: <message>") is the finding of that policy, Unverified.
func PolicyFinding(ev events.EngineEvent) (policypacks.Finding, bool) {
	if ev.PolicyEvent == nil {
		return policypacks.Finding{}, false
	}
	p := ev.PolicyEvent
	f := policypacks.Finding{Policy: p.PolicyName, Pack: p.PolicyPackName, URN: p.ResourceURN,
		Severity: policypacks.Severity(p.Severity), Message: strings.TrimSpace(p.Message),
		Enforcement: policypacks.Enforcement(p.EnforcementLevel)}
	if p.PolicyName == policypacks.UnverifiedPolicy || p.PolicyName == policypacks.UnverifiedStackPolicy {
		f.Unverified = true
		if name, msg, ok := strings.Cut(MessageLine(f.Message), ": "); ok && !strings.Contains(name, " ") {
			f.Policy, f.Message = name, msg
		}
	}
	return policypacks.Attribute(f), true
}

// MessageLine returns the line of a policy finding's message that says
// what was found: its last line (the engine puts the policy's description
// first).
func MessageLine(s string) string {
	lines := strings.Split(s, "\n")
	return lines[len(lines)-1]
}
