package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slipwayhq/slipway/automation/toolchain"
)

// BenchmarkPulumiStart runs `pulumi version`, a whole process from exec to
// exit that does nothing but start: what every engine operation pays once
// per pulumi process. side=bare is the upstream build, side=slipway the one
// Slipway builds, whose patches move two package initialisers to their
// first use (automation/toolchain/lazyinit.go). Both are resolved and run
// once before the timer starts.
func BenchmarkPulumiStart(b *testing.B) {
	b.Run("base=version", func(b *testing.B) {
		for _, side := range sides {
			b.Run("side="+side, func(b *testing.B) {
				bin := filepath.Join(upstreamRoot, "bin", "pulumi")
				if side == "slipway" {
					p, err := toolchain.New(toolchain.WithoutPATH()).Pulumi(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					bin = p.Bin()
				}
				run := func() {
					cmd := exec.Command(bin, "version")
					cmd.Env = append(os.Environ(), "PULUMI_SKIP_UPDATE_CHECK=true", "PULUMI_HOME="+pulumiHome)
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("%s version: %v\n%s", bin, err, out)
					}
				}
				run()
				b.ResetTimer()
				for range b.N {
					run()
				}
			})
		}
	})
}
