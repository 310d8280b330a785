package toolchain

import (
	_ "embed"

	"github.com/slipwayhq/slipway/automation/toolchain/internal/gobuild"
)

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
var groupCommit = gobuild.Patch{
	Name:   "group-commit",
	Module: "github.com/pulumi/pulumi/pkg/v3",
	File:   "backend/snapshot.go",
	Old: `		case request := <-mutationRequests:
			var err error
			if request.mutator() {
				err = sm.saveSnapshot()
				hasElidedWrites = false
			} else {
				hasElidedWrites = true
			}
			request.result <- err
`,
	New: `		case request := <-mutationRequests:
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
	Tests: map[string]string{"slipway_group_commit_test.go": groupCommitTest},
}

// groupCommitTest is added to the engine's backend package when the patch is
// tested (TestGroupCommit_EngineTestsPassWithThePatch): the engine's own
// snapshot manager tests run against the patched file alongside it.
//
//go:embed patches/slipway_group_commit_test.go.txt
var groupCommitTest string
