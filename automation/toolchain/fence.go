package toolchain

import (
	_ "embed"

	"github.com/slipwayhq/slipway/automation/fence"
	"github.com/slipwayhq/slipway/automation/toolchain/internal/gobuild"
)

// FenceFileEnv is the environment variable naming the fence file of the
// engine Slipway builds (see fencePatches): line 1 is a deadline in Unix
// nanoseconds, line 2 the fencing token recorded in the stack's lock.
const FenceFileEnv = fence.Env

// fencePatches make the engine's diy backend (file, s3, gs, azblob) fence
// itself: with FenceFileEnv set, every write, copy and delete to its bucket
// (checkpoint, backup, history, lock, tags, metadata) reads the fence file
// first and refuses once its deadline has passed, or when the file is
// missing or malformed (fail closed), and is cancelled if still in flight
// at the deadline. The one choke point is the bucket the backend wraps
// right after opening it (backend.go); nothing else holds the unwrapped
// bucket. The stack's lock records the fencing token (lockContent). Without
// FenceFileEnv the engine behaves as upstream.
var fencePatches = []gobuild.Patch{
	{
		Name:   "fence-bucket",
		Module: "github.com/pulumi/pulumi/pkg/v3",
		File:   "backend/diy/backend.go",
		Old:    "\twbucket := &wrappedBucket{bucket: bucket}\n",
		New:    "\twbucket := slipwayFenced(&wrappedBucket{bucket: bucket}) // Slipway fence (automation/toolchain/fence.go)\n",
		Add:    map[string]string{"slipway_fence.go": fenceSource},
		Tests:  map[string]string{"slipway_fence_test.go": fenceTest},
	},
	{
		Name:   "fence-lock-field",
		Module: "github.com/pulumi/pulumi/pkg/v3",
		File:   "backend/diy/lock.go",
		Old:    "\tTimestamp time.Time `json:\"timestamp\"`\n}\n",
		New:    "\tTimestamp time.Time `json:\"timestamp\"`\n\t// SlipwayFence is the fencing token of the runner (Slipway fence).\n\tSlipwayFence string `json:\"slipwayFence,omitempty\"`\n}\n",
	},
	{
		Name:   "fence-lock-token",
		Module: "github.com/pulumi/pulumi/pkg/v3",
		File:   "backend/diy/lock.go",
		Old:    "\t\tTimestamp: time.Now(),\n\t}, nil\n",
		New:    "\t\tTimestamp: time.Now(),\n\t\tSlipwayFence: slipwayFenceToken(),\n\t}, nil\n",
	},
}

// fenceSource is the fenced bucket added to the engine's diy package.
//
//go:embed patches/slipway_fence.go.txt
var fenceSource string

// fenceTest is added to the diy package when the patches are tested
// (TestFence_EngineTestsPassWithThePatch).
//
//go:embed patches/slipway_fence_test.go.txt
var fenceTest string
