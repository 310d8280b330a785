package toolchain

// groupCommit makes the engine persist, with one checkpoint write, every
// snapshot mutation that arrives while a write is in progress (group commit),
// instead of one whole-checkpoint write per mutation.
//
// On the file and S3 backends each write serialises, verifies and rewrites
// the whole checkpoint (plus a backup copy), so an update of n resources costs
// O(n²); with the engine's default parallelism (4 per core) several steps wait
// for the same write. The crash-safety contract is unchanged: a caller of
// mutate still returns only after a write that includes its mutation has
// finished, so a step's pending operation is durable before the provider is
// called, exactly as before. Only the number of writes drops. Mutations are
// still applied one at a time, in arrival order, by the one service goroutine.
var groupCommit = patch{
	name:   "group-commit",
	module: "github.com/pulumi/pulumi/pkg/v3",
	file:   "backend/snapshot.go",
	old: `		case request := <-mutationRequests:
			var err error
			if request.mutator() {
				err = sm.saveSnapshot()
				hasElidedWrites = false
			} else {
				hasElidedWrites = true
			}
			request.result <- err
`,
	new: `		case request := <-mutationRequests:
			// Slipway group commit: apply this mutation and every one already
			// waiting, then persist them with one write and answer each caller
			// only after that write (see slipway automation/toolchain/groupcommit.go).
			batch := []mutationRequest{request}
			mustWrite := request.mutator()
		drain:
			for {
				select {
				case next := <-mutationRequests:
					batch = append(batch, next)
					if next.mutator() {
						mustWrite = true
					}
				default:
					break drain
				}
			}
			var err error
			if mustWrite {
				err = sm.saveSnapshot()
				hasElidedWrites = false
			} else {
				hasElidedWrites = true
			}
			for _, r := range batch {
				r.result <- err
			}
`,
	tests: map[string]string{"slipway_group_commit_test.go": groupCommitTest},
}

// groupCommitTest is added to the engine's backend package when the patch is
// tested (TestGroupCommit_EngineTestsPassWithThePatch): the engine's own
// snapshot manager tests run against the patched file alongside it.
const groupCommitTest = `package backend

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulumi/pulumi/pkg/v3/resource/deploy"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// gatedPersister holds each Save until the test releases it, while gated.
type gatedPersister struct {
	gated   atomic.Bool
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	saved   []*apitype.DeploymentV3
	done    atomic.Int64
}

func (p *gatedPersister) Save(d apitype.TypedDeployment) error {
	if p.gated.Load() {
		p.entered <- struct{}{}
		<-p.release
	}
	p.mu.Lock()
	p.saved = append(p.saved, d.Deployment)
	p.mu.Unlock()
	p.done.Add(1)
	return nil
}

// waitingInMutate counts goroutines blocked handing a mutation to the
// manager (mutate selects between the request queue and cancellation).
func waitingInMutate() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[select") && strings.Contains(g, "(*SnapshotManager).mutate(") {
			n++
		}
	}
	return n
}

func TestSlipwayGroupCommit_MutationsWaitingDuringAWriteShareTheNextWrite(t *testing.T) {
	p := &gatedPersister{entered: make(chan struct{}), release: make(chan struct{})}
	p.gated.Store(true)
	base := NewSnapshot(nil)
	sm := NewSnapshotManager(p, base.SecretsManager, base, nil)

	first := deploy.NewCreateStep(nil, &MockRegisterResourceEvent{}, NewResource("first"))
	firstDone := make(chan error, 1)
	go func() { _, err := sm.BeginMutation(first); firstDone <- err }()
	<-p.entered // the first write is in progress and held

	const k = 10
	var wg sync.WaitGroup
	var returnedEarly atomic.Int64
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := deploy.NewCreateStep(nil, &MockRegisterResourceEvent{}, NewResource(resource.URN(fmt.Sprintf("r%d", i))))
			_, err := sm.BeginMutation(step)
			assert.NoError(t, err)
			if p.done.Load() < 2 {
				returnedEarly.Add(1) // returned before the write holding its mutation finished
			}
		}()
	}
	require.Eventually(t, func() bool { return waitingInMutate() == k }, 30*time.Second, time.Millisecond,
		"all %d mutations wait for the manager", k)

	p.release <- struct{}{} // finish write 1
	require.NoError(t, <-firstDone)
	<-p.entered // write 2 starts: it must hold all k mutations
	p.gated.Store(false)
	p.release <- struct{}{}
	wg.Wait()
	assert.Zero(t, returnedEarly.Load(), "no caller returns before the write holding its mutation")

	p.mu.Lock()
	require.Len(t, p.saved, 2, "k waiting mutations are persisted by one write")
	ops := p.saved[1].PendingOperations
	p.mu.Unlock()
	assert.Len(t, ops, k+1, "the second write holds every pending create")
	require.NoError(t, sm.Close())
}

func TestSlipwayGroupCommit_OneMutationAtATimeIsOneWriteEach(t *testing.T) {
	sm, sp := MockSetup(t, NewSnapshot(nil))
	for i := range 3 {
		step := deploy.NewCreateStep(nil, &MockRegisterResourceEvent{}, NewResource(resource.URN(fmt.Sprintf("s%d", i))))
		m, err := sm.BeginMutation(step)
		require.NoError(t, err)
		require.Len(t, sp.SavedSnapshots, 2*i+1)
		require.NoError(t, m.End(step, true))
		require.Len(t, sp.SavedSnapshots, 2*i+2)
	}
	require.NoError(t, sm.Close())
	assert.Len(t, sp.LastSnap().Resources, 3)
}
`
