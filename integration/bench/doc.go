// Package bench measures Slipway against what it is compared with, on the
// real engine, the real Kubernetes provider and a real local control plane.
// It holds benchmarks, a smoke test that keeps them working, and the tests
// of what the speed must not cost (a kill -9 at 1,000 resources, twenty
// ephemeral environments collected by GC); this file is its documentation.
//
// # What is compared
//
// Every benchmark has two sides, keyed side=bare and side=slipway so that
// `go tool benchstat -col /side` prints them side by side with their ratio:
//
//   - BenchmarkUp, BenchmarkNoopPreview, BenchmarkPreviewChange,
//     BenchmarkRefresh and BenchmarkDestroy, each with n=10, n=100 and
//     n=1000: a namespace, n ConfigMaps and one Deployment (n+4 resources
//     with the stack and the provider), driven by the bare Automation API
//     (side=bare) and by Slipway's automation.Engine (side=slipway). Both run
//     the same inline program with the same Kubernetes provider from package
//     toolchain and the pulumi CLI of the same version: the bare side the
//     upstream build (toolchain.UpstreamPulumiCLI), what a user of the bare
//     Automation API runs; Slipway its own, with the group-commit patch
//     (toolchain's groupcommit.go); one PULUMI_HOME, a file backend each
//     and the same engine environment; both stream the engine's events to a
//     goroutine (the bare side drains an EventStreams channel, Slipway's
//     collector builds its Result). The timed part is what one command does:
//     open the existing stack (the bare side with UpsertStackInlineSource or
//     SelectStackInlineSource, Slipway with UpsertStack or SelectStack, as
//     its CLI does) and run the verb. Creating the stack, installing the
//     plugin, the up that a preview, refresh or destroy needs and the destroy
//     after an up are not timed. PreviewChange previews the program with one
//     ConfigMap value changed (one update). In one process the benchmarks
//     of a side and a size share one stack, in the order Up, NoopPreview,
//     PreviewChange, Refresh, Destroy: each starts from the state the one
//     before left when it can (the program deployed after Up, ...), and an
//     up or a destroy brings the stack to its start state, untimed, when it
//     is not. At n=1000 each side also reports
//     peak-rss-MiB (this test process, which runs the inline program and
//     Slipway), engine-peak-rss-MiB (the pulumi CLI processes) and
//     provider-peak-rss-MiB (the Kubernetes provider plugin), all peaks
//     during the timed operation (the process's own peak is reset through
//     /proc/self/clear_refs; the children's VmHWM is sampled every 100 ms).
//   - BenchmarkRecover, with n=10, n=100 and n=1000: the recovery of the
//     deployed n-resource program after an interrupted update left three
//     pending operations in its state (the updates of two ConfigMaps, the
//     create of one the state does not hold yet), planted in the checkpoint
//     before the timer starts. side=bare clears them with a refresh of the
//     whole stack (the Automation API's Refresh with ClearPendingCreates),
//     as Slipway's recovery did before; side=slipway with Stack.Recover,
//     whose refresh targets only the resources of the pending operations.
//     Both sides are Slipway's engine and stack; each checks that no pending
//     operation is left and the state holds the program, and Slipway's that
//     the engine read only the two ConfigMaps.
//   - BenchmarkFourEnvs/base=sequential: four `web` dev environments (16
//     resources each) brought up by one Engine, one after another
//     (side=bare: Engine.Each with concurrency 1) and all at once
//     (side=slipway: Engine.Each with concurrency 4). Both sides are Slipway.
//   - BenchmarkEphemeralCreate/base=kubectl and BenchmarkEphemeralDestroy:
//     an ephemeral `web` environment (namespace, quota, limit range, three
//     network policies, ConfigMap, Deployment, Service, PodDisruptionBudget
//     and HorizontalPodAutoscaler: 11 objects) created
//     and destroyed by Engine.CreateEphemeral and Engine.DestroyEphemeral
//     (side=slipway), against a real kubectl (built by package toolchain
//     from the control plane's k8s.io/kubernetes module)
//     applying the manifests that `slipway render` writes for the same
//     environment (side=bare): `kubectl apply -f` of every file, namespace
//     first, then `kubectl wait` until the Deployment is Available and the
//     namespace Active; and `kubectl delete -f` of the same files, which
//     waits until every object, the namespace included, is gone.
//   - BenchmarkTwentyEphemerals/base=sequential: twenty ephemeral `web`
//     environments created by Engine.CreateEphemeral (what `slipway
//     ephemeral create` runs) on one Engine and file backend, one after
//     another (side=bare) and all at once (side=slipway); once they have
//     expired, Engine.GC (what `slipway gc` runs) collects them, with a
//     concurrency of 1 (side=bare) or 20 (side=slipway). ns/op is the wall
//     time of the twenty creates, gc-s/op that of the GC,
//     backend-files-left/op the files of the twenty (checkpoint backups,
//     release and run records) the backend still holds after it. Both sides
//     are Slipway. TestEphemerals_TwentyInParallelThenGCLeaveNothing (run by
//     `go test ./...`) is the parallel side once with a one-second TTL: GC
//     collects nothing before the earliest expiry, then, on the real clock
//     after the latest, exactly the twenty, and nothing of them is left in
//     the API server (no object of any listable type in their namespaces,
//     no namespace, nothing labelled with their names) or in the backend (no
//     stack, no file of theirs, no lock), while a non-ephemeral environment
//     of the same backend is untouched.
//   - BenchmarkCLIPreview/base=library: a no-op preview of a `web` dev
//     environment (15 resources) that the slipway binary brought up:
//     side=slipway is `slipway preview --env <env> --expect-no-changes
//     --json` as a whole process, exec to exit; side=bare is what that
//     process does inside (automation.New on the same directory, the same
//     program, Engine.Each with a Preview), in the test process. The binary
//     is built (go build ./cmd/slipway) and the environment brought up by it
//     before the timer starts, and one preview runs untimed first (warm);
//     every preview must report each resource the same.
//
// Each benchmark checks, outside the timer, that the operation did its work
// (resource counts from the engine and objects in the API server), so a
// fast failure is never a result.
//
// # Running
//
// One run of everything, one side of one benchmark at a time:
//
//	go test -run '^$' -bench 'Up/n=10/side=bare$' -benchtime 1x ./integration/bench/
//
// The script run next to this file is the documented way to get figures:
//
//	integration/bench/run
//
// It builds the test binary once, and for each of BENCH_RUNS runs (default
// 5) runs every selected benchmark once per side, each side in a process of
// its own with a fresh local cluster, alternating which side goes first
// (run 1: bare then slipway; run 2: slipway then bare; ...). Every result is
// appended to one results file, and at the end it prints the date, the
// machine and one table from `go tool benchstat -col /side` (medians and
// the spread as a 95 % confidence interval of the median, or 90 % below 6
// runs, where benchstat cannot give a 95 % one). BENCH_SIZES selects n (default "10 100"; 1000 is opt-in, an
// up of 1,000 resources takes minutes per side), BENCH_FILTER the
// benchmarks (a regular expression over the names without "Benchmark",
// default every one) and BENCH_OUT the directory the results and logs go to.
//
// `go test ./...` runs TestBench_EveryBodyWorks, which runs each
// benchmark's body once at n=10 and checks it, so the benchmarks cannot rot,
// and TestEphemerals_TwentyInParallelThenGCLeaveNothing, the parallel body
// of BenchmarkTwentyEphemerals. The local cluster starts only when one of
// those tests or a benchmark is selected.
package bench
