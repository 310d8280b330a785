package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	autorefresh "github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"

	"github.com/slipwayhq/slipway/automation"
	slipdestroy "github.com/slipwayhq/slipway/automation/optdestroy"
	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/automation/statestore"
)

// BenchmarkRecover times the recovery of a deployed n-resource program
// after an interrupted update left three pending operations in its state
// (the updates of ConfigMaps cm-0 and cm-1, the create of a ConfigMap the
// state does not hold yet): side=bare clears them as Slipway's recovery did
// before, and as a user of the Automation API does, with a refresh of the
// whole stack (Refresh with ClearPendingCreates); side=slipway with
// Stack.Recover, whose refresh targets only the resources of the pending
// operations (recovery.RefreshTargets). Both sides are Slipway's engine and
// stack on the same program, with the same pending operations planted in
// the checkpoint before the timer starts.
func BenchmarkRecover(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for _, side := range sides {
				b.Run("side="+side, func(b *testing.B) { runRecover(b, b, b.N, side, n, true) })
			}
		})
	}
}

// runRecover is the body of BenchmarkRecover: a deployed stack of the
// program (recoverFixture, untimed), then iterations × (untimed: plant the
// pending operations; timed: the recovery; untimed: check that no pending
// operation is left, the state still holds the program and, on Slipway's
// side, that only the two updated ConfigMaps were stepped through).
func runRecover(tb testing.TB, tm timer, iterations int, side string, n int, shared bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	tm.StopTimer()
	tm.ResetTimer()
	f := recoverFixture(tb, side, n, shared)
	e, st, ns := f.e, f.st, f.ns
	var err error
	for range iterations {
		urns := plantRecoverPending(ctx, tb, e, ns)
		tm.StartTimer()
		var rec *recoveryResult
		switch side {
		case "bare":
			r, rerr := st.Auto().Refresh(ctx, autorefresh.ClearPendingCreates())
			err = rerr
			rec = &recoveryResult{summary: outcome.SummaryOf(r.Summary.ResourceChanges)}
		case "slipway":
			r, rerr := st.Recover(ctx)
			err = rerr
			if r != nil {
				rec = &recoveryResult{refreshed: r.Refreshed, read: r.RefreshedResources}
			}
		}
		tm.StopTimer()
		must(tb, err)
		pending, held := recoverState(ctx, tb, e, ns)
		if pending != 0 || held != resources(n) {
			tb.Fatalf("after the recovery the state holds %d pending operations and %d resources, want 0 and %d", pending, held, resources(n))
		}
		switch side {
		case "bare":
			expect(tb, rec.summary, map[string]int{"same": resources(n)})
		case "slipway":
			slices.Sort(rec.read)
			if !rec.refreshed || !slices.Equal(rec.read, urns) {
				tb.Fatalf("the recovery read %v (refreshed %v), want exactly the updated ConfigMaps %v", rec.read, rec.refreshed, urns)
			}
		}
	}
}

// recoverStack is a deployed stack of the n-resource program on an engine
// of its own; its stack and namespace are named ns.
type recoverStack struct {
	e  *automation.Engine
	st *automation.Stack
	ns string
}

// recoverStacks are the stacks BenchmarkRecover shares in one process, by
// side and n: each -count reuses it, so the program is brought up once.
var recoverStacks = map[string]*recoverStack{}

// recoverFixture brings the program up on a new stack of side and n
// (untimed), destroyed and removed when tb ends or, when shared, at the
// end of the process, which reuses it for every later call.
func recoverFixture(tb testing.TB, side string, n int, shared bool) *recoverStack {
	tb.Helper()
	key := fmt.Sprintf("recover-%s-%d", side, n)
	if f, ok := recoverStacks[key]; ok && shared {
		return f
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	f := &recoverStack{ns: key}
	if shared {
		// The engine's directory (and its file backend) outlives tb.
		dir, err := os.MkdirTemp(scratch, key+"-")
		must(tb, err)
		f.e = newEngineIn(tb, dir)
	} else {
		f.e, f.ns = newEngine(tb), "smoke-"+key
	}
	st, err := f.e.UpsertStack(ctx, benchProgram(f.ns, f.ns, n, false))
	must(tb, err)
	f.st = st
	remove := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		if _, err := st.Destroy(ctx, slipdestroy.RemoveStack()); err != nil {
			return fmt.Errorf("cleanup of %s: %w", f.ns, err)
		}
		return nil
	}
	if shared {
		recoverStacks[key] = f
		atExit = append(atExit, remove)
	} else {
		tb.Cleanup(func() {
			if err := remove(); err != nil {
				tb.Error(err)
			}
		})
	}
	_, err = st.Up(ctx)
	must(tb, err)
	return f
}

// recoveryResult is what a side's recovery reported.
type recoveryResult struct {
	summary   map[string]int
	refreshed bool
	read      []string
}

// plantRecoverPending writes three pending operations into the stack's
// checkpoint, as an update killed while it changed ConfigMaps cm-0 and
// cm-1 and created a new one leaves it, and returns the URNs of the two
// updated ConfigMaps, sorted.
func plantRecoverPending(ctx context.Context, tb testing.TB, e *automation.Engine, stack string) []string {
	tb.Helper()
	store, err := statestore.Open(ctx, e.Backend(), nil)
	must(tb, err)
	defer func() { must(tb, store.Close()) }()
	cp, err := store.ReadCheckpoint(ctx, project, stack)
	must(tb, err)
	var v map[string]json.RawMessage
	must(tb, json.Unmarshal(cp.Data, &v))
	var c map[string]json.RawMessage
	must(tb, json.Unmarshal(v["checkpoint"], &c))
	var latest map[string]json.RawMessage
	must(tb, json.Unmarshal(c["latest"], &latest))
	var resources []json.RawMessage
	must(tb, json.Unmarshal(latest["resources"], &resources))
	type op struct {
		Type     string          `json:"type"`
		Resource json.RawMessage `json:"resource"`
	}
	var ops []op
	var urns []string
	for _, r := range resources {
		var h struct {
			URN  string `json:"urn"`
			Type string `json:"type"`
		}
		must(tb, json.Unmarshal(r, &h))
		if h.Type == "kubernetes:core/v1:ConfigMap" && (urnName(h.URN) == "cm-0" || urnName(h.URN) == "cm-1") {
			ops = append(ops, op{Type: "updating", Resource: r})
			urns = append(urns, h.URN)
		}
	}
	if len(ops) != 2 {
		tb.Fatalf("the state of %s holds %d of ConfigMaps cm-0 and cm-1", stack, len(ops))
	}
	fresh := fmt.Sprintf(`{"urn":"urn:pulumi:%s::%s::kubernetes:core/v1:ConfigMap::cm-new","custom":true,"type":"kubernetes:core/v1:ConfigMap",`+
		`"inputs":{"metadata":{"name":"cm-new","namespace":"%s"}}}`, stack, project, stack)
	ops = append(ops, op{Type: "creating", Resource: json.RawMessage(fresh)})
	latest["pending_operations"], err = json.Marshal(ops)
	must(tb, err)
	c["latest"], err = json.Marshal(latest)
	must(tb, err)
	v["checkpoint"], err = json.Marshal(c)
	must(tb, err)
	cp.Data, err = json.Marshal(v)
	must(tb, err)
	must(tb, store.WriteCheckpoint(ctx, cp))
	slices.Sort(urns)
	return urns
}

// recoverState returns how many pending operations and resources the
// stack's checkpoint holds.
func recoverState(ctx context.Context, tb testing.TB, e *automation.Engine, stack string) (pending, held int) {
	tb.Helper()
	store, err := statestore.Open(ctx, e.Backend(), nil)
	must(tb, err)
	defer func() { must(tb, store.Close()) }()
	cp, err := store.ReadCheckpoint(ctx, project, stack)
	must(tb, err)
	d, err := cp.Deployment()
	must(tb, err)
	var s struct {
		Resources []json.RawMessage `json:"resources"`
		Pending   []json.RawMessage `json:"pending_operations"`
	}
	must(tb, json.Unmarshal(d.Deployment, &s))
	return len(s.Pending), len(s.Resources)
}
