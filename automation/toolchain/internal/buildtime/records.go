package buildtime

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/slipwayhq/slipway/automation/internal/filelock"
	"github.com/slipwayhq/slipway/automation/toolchain/internal/gobuild"
)

// File, in the cache directory, records how long the last builds of each
// tool took on this machine; the next build's estimate comes from it.
const File = "build-times.json"

// Record is one tool's entry in File: the last cold build (Seconds,
// compiling Packages) and the last warm one (WarmSeconds), which found most
// packages in the Go build cache.
type Record struct {
	// Version is the version of the tool last built.
	Version string `json:"version"`
	// Seconds is how long the last cold build took.
	Seconds float64 `json:"seconds,omitempty"`
	// Packages is how many packages the last cold build compiled.
	Packages int `json:"packagesCompiled,omitempty"`
	// WarmSeconds is how long the last warm build took.
	WarmSeconds float64 `json:"warmSeconds,omitempty"`
	// Built is when the last build ended.
	Built time.Time `json:"built"`
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Records are the build times recorded in File under a cache directory.
type Records struct {
	// Dir is the cache directory that holds File.
	Dir string
}

// read reads File; a missing or unreadable file is empty.
func (rs Records) read() map[string]Record {
	recs := map[string]Record{}
	if b, err := os.ReadFile(filepath.Join(rs.Dir, File)); err == nil {
		if json.Unmarshal(b, &recs) != nil {
			return map[string]Record{}
		}
	}
	return recs
}

// Expected returns how long a cold build of the tool name should take and
// what that is based on: the last cold build of it recorded on this
// machine, else estimate, its static estimate.
func (rs Records) Expected(name string, estimate time.Duration) (time.Duration, string) {
	if rec, ok := rs.read()[name]; ok && rec.Seconds > 0 && rec.Packages > 0 {
		d := seconds(rec.Seconds)
		return d, "the last build on this machine took " + Format(d)
	}
	return estimate, "a cold build on 2 cores"
}

// ExpectedFor refines Expected once a build knows it compiles n of the
// total packages its targets depend on: the time of a build that finds them
// all in the Go build cache (the last such build here, else a tenth of the
// cold time), plus the cold build's time beyond that in proportion to the
// packages to compile.
func (rs Records) ExpectedFor(name string, estimate time.Duration, n, total int) time.Duration {
	cold, pkgs := estimate, total
	rec, ok := rs.read()[name]
	if ok && rec.Seconds > 0 && rec.Packages > 0 {
		cold, pkgs = seconds(rec.Seconds), rec.Packages
	}
	warm := cold / 10
	if ok && rec.WarmSeconds > 0 && seconds(rec.WarmSeconds) < cold {
		warm = seconds(rec.WarmSeconds)
	}
	if pkgs <= 0 {
		return cold
	}
	return warm + time.Duration(float64(cold-warm)*float64(n)/float64(pkgs))
}

// Add records that a build of the tool name at version took took and
// compiled compiled packages: as its cold build when it compiled at least
// half as many packages as the recorded cold build, else as its warm build.
func (rs Records) Add(ctx context.Context, name, version string, took time.Duration, compiled int) error {
	path := filepath.Join(rs.Dir, File)
	unlock, err := filelock.Lock(ctx, path+".lock", 0o644, 50*time.Millisecond, nil)
	if err != nil {
		return err
	}
	defer unlock()
	recs := rs.read()
	rec := recs[name]
	if compiled > 0 && compiled*2 >= rec.Packages {
		rec.Seconds, rec.Packages = took.Seconds(), compiled
	} else {
		rec.WarmSeconds = took.Seconds()
	}
	rec.Version, rec.Built = version, time.Now().UTC()
	recs[name] = rec
	b, _ := json.MarshalIndent(recs, "", "  ")
	return gobuild.WriteFileAtomic(path, b, 0o644)
}
