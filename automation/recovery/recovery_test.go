package recovery

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/statestore"
)

func TestAdoptable_OnlyObjectsTheNextRunAdopts(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    resourceState
		want bool
		why  string
	}{
		{"named ConfigMap", resourceState{Custom: true, Type: "kubernetes:core/v1:ConfigMap", Inputs: json.RawMessage(`{"metadata":{"name":"web-config"}}`)}, true, "server-side apply"},
		{"named Deployment without inputs", resourceState{Custom: true, Type: "kubernetes:apps/v1:Deployment"}, true, "server-side apply"},
		{"autonamed ConfigMap", resourceState{Custom: true, Type: "kubernetes:core/v1:ConfigMap", Inputs: json.RawMessage(`{"metadata":{"name":"web-x1y2","annotations":{"pulumi.com/autonamed":"true"}}}`)}, false, "autonamed"},
		{"Helm release", resourceState{Custom: true, Type: "kubernetes:helm.sh/v3:Release"}, false, "Helm release"},
		{"Kubernetes provider", resourceState{Custom: true, Type: "pulumi:providers:kubernetes"}, true, "provider"},
		{"AWS provider", resourceState{Custom: true, Type: "pulumi:providers:aws"}, true, "provider"},
		{"component", resourceState{Custom: false, Type: "slipway:app:Web"}, true, "component"},
		{"AWS VPC", resourceState{Custom: true, Type: "aws:ec2/vpc:Vpc"}, false, "could orphan it"},
		{"S3 bucket", resourceState{Custom: true, Type: "aws:s3/bucketV2:BucketV2"}, false, "could orphan it"},
		{"custom resource type", resourceState{Custom: true, Type: "slipway:test:Custom"}, false, "slipway:test:Custom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := adoptable(tc.r)
			assert.Equal(t, tc.want, got, why)
			assert.Contains(t, why, tc.why)
		})
	}
}

func TestPendingOperations_ClassifiesEachOperation(t *testing.T) {
	dep := json.RawMessage(`{"manifest":{},"resources":[],"pending_operations":[
		{"resource":{"urn":"urn:pulumi:dev::p::kubernetes:core/v1:ConfigMap::cm","custom":true,"type":"kubernetes:core/v1:ConfigMap","inputs":{"metadata":{"name":"cm"}}},"type":"creating"},
		{"resource":{"urn":"urn:pulumi:dev::p::slipway:test:Custom::thing","custom":true,"type":"slipway:test:Custom"},"type":"creating"},
		{"resource":{"urn":"urn:pulumi:dev::p::aws:ec2/vpc:Vpc::vpc","custom":true,"type":"aws:ec2/vpc:Vpc"},"type":"updating"}]}`)
	got, err := PendingOperations(dep)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, PendingOperation{Op: "creating", URN: "urn:pulumi:dev::p::kubernetes:core/v1:ConfigMap::cm", Type: "kubernetes:core/v1:ConfigMap",
		Adoptable: true, Reason: "server-side apply adopts the object of the same name"}, got[0])
	assert.False(t, got[1].Adoptable, "a create of a custom type may have made a real resource")
	assert.True(t, got[2].Adoptable, "an interrupted update leaves the resource in the state")

	none, err := PendingOperations(nil)
	require.NoError(t, err)
	assert.Empty(t, none)
	_, err = PendingOperations(json.RawMessage(`{"pending_operations":{}}`))
	assert.Error(t, err)
}

func TestUnsafeToRestore_OnlyKubernetesCheckpointsRestoreWithoutRepair(t *testing.T) {
	checkpoint := func(resources string) []byte {
		return []byte(`{"version":3,"checkpoint":{"stack":"organization/p/dev","latest":{"resources":[` + resources + `]}}}`)
	}
	const stack = `{"urn":"urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev","custom":false,"type":"pulumi:pulumi:Stack"}`
	const k8sProvider = `{"urn":"urn:pulumi:dev::p::pulumi:providers:kubernetes::k8s","custom":true,"type":"pulumi:providers:kubernetes"}`
	const cm = `{"urn":"urn:pulumi:dev::p::slipway:app:Web$kubernetes:core/v1:ConfigMap::cm","custom":true,"type":"kubernetes:core/v1:ConfigMap"}`
	const web = `{"urn":"urn:pulumi:dev::p::slipway:app:Web::web","custom":false,"type":"slipway:app:Web"}`
	const vpc = `{"urn":"urn:pulumi:dev::p::aws:ec2/vpc:Vpc::vpc","custom":true,"type":"aws:ec2/vpc:Vpc"}`
	for _, tc := range []struct {
		name           string
		backup, broken []byte
		want           []string
	}{
		{"Kubernetes objects, components and providers", checkpoint(stack + "," + k8sProvider + "," + web + "," + cm), checkpoint(stack + "," + cm)[:90], []string{}},
		{"an AWS resource in the backup", checkpoint(stack + "," + vpc), checkpoint(stack)[:40], []string{"aws:ec2/vpc:Vpc"}},
		{"an AWS provider in the backup", checkpoint(stack + `,{"urn":"urn:pulumi:dev::p::pulumi:providers:aws::default","custom":true,"type":"pulumi:providers:aws"}`), nil, []string{"pulumi:providers:aws"}},
		{"a new custom type in the broken part", checkpoint(stack), checkpoint(stack + "," + `{"urn":"urn:pulumi:dev::p::slipway:test:Custom::c","custom":true`), []string{"slipway:test:Custom"}},
		{"an unreadable backup", []byte("{"), nil, []string{"(backup unreadable)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, unsafeToRestore(tc.backup, tc.broken))
		})
	}
}

func TestURNType(t *testing.T) {
	assert.Equal(t, "kubernetes:core/v1:ConfigMap", urnType("urn:pulumi:dev::p::slipway:app:Web$kubernetes:core/v1:ConfigMap::cm"))
	assert.Equal(t, "pulumi:pulumi:Stack", urnType("urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev"))
	assert.Equal(t, "garbage", urnType("garbage"))
}

// fileStore is a file backend in Pulumi's project-scoped layout.
func fileStore(t *testing.T) (*statestore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".pulumi"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".pulumi", "meta.yaml"), []byte("version: 1\n"), 0o600))
	s, err := statestore.Open(context.Background(), "file://"+dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, dir
}

func writeLock(t *testing.T, dir, name string, l statestore.Lock) string {
	t.Helper()
	p := filepath.Join(dir, ".pulumi", "locks", "organization", "proj", "dev", name+".json")
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	b, err := json.Marshal(l)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

func TestRecoverLocks_RemovesOnlyProvenStaleLocks(t *testing.T) {
	ctx := context.Background()
	host, err := os.Hostname()
	require.NoError(t, err)
	dead := statestore.Lock{PID: 1 << 30, Username: "ci", Hostname: host, Timestamp: time.Now().Add(-time.Minute)}
	live := statestore.Lock{PID: os.Getpid(), Username: "ci", Hostname: host, Timestamp: time.Now()}
	reused := statestore.Lock{PID: os.Getpid(), Username: "ci", Hostname: host, Timestamp: time.Now().Add(-240 * time.Hour)}
	remote := statestore.Lock{PID: 7, Username: "ci", Hostname: host + "-other-runner", Timestamp: time.Now().Add(-time.Hour)}
	for _, tc := range []struct {
		name        string
		lock        statestore.Lock
		forceUnlock bool
		deadHosts   []string
		wantRemoved bool
		wantHeld    bool
		wantLocked  bool
	}{
		{name: "dead owner", lock: dead, wantRemoved: true},
		{name: "reused pid", lock: reused, wantRemoved: true},
		{name: "live owner", lock: live, wantHeld: true},
		{name: "live owner with force-unlock", lock: live, forceUnlock: true, wantHeld: true},
		{name: "other host", lock: remote, wantHeld: true, wantLocked: true},
		{name: "other host with force-unlock", lock: remote, forceUnlock: true, wantRemoved: true},
		{name: "other host proven dead by its expired lease", lock: remote, deadHosts: []string{host + "-other-runner"}, wantRemoved: true},
		{name: "another host's death proves nothing about this one", lock: remote, deadHosts: []string{"someone-else"}, wantHeld: true, wantLocked: true},
		{name: "a dead-host claim about this host is ignored", lock: live, deadHosts: []string{host}, wantHeld: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, dir := fileStore(t)
			path := writeLock(t, dir, "l", tc.lock)
			rec := &Recovery{}
			held, err := RemoveStaleLocks(ctx, store, "proj", "dev", Unlock{Force: tc.forceUnlock, DeadHosts: tc.deadHosts}, rec)
			assert.Equal(t, tc.wantHeld, held)
			if tc.wantLocked {
				var le *statestore.StackLockedError
				require.ErrorAs(t, err, &le)
				assert.True(t, statestore.IsStackLocked(err))
				require.Len(t, le.Locks, 1)
				assert.Equal(t, path, le.Locks[0].Location)
				assert.InDelta(t, time.Hour.Seconds(), le.Locks[0].Age.Seconds(), 60)
				assert.Contains(t, err.Error(), "--force-unlock")
				assert.Contains(t, err.Error(), "automation.WithForceUnlock()")
				assert.Contains(t, err.Error(), "ci@"+tc.lock.Hostname+" (pid 7)")
			} else {
				require.NoError(t, err)
			}
			if tc.wantRemoved {
				assert.NoFileExists(t, path)
				require.Len(t, rec.StaleLocks, 1)
				assert.Equal(t, tc.forceUnlock, rec.StaleLocks[0].Forced)
				assert.Empty(t, rec.HeldLocks)
			} else {
				assert.FileExists(t, path, "a lock whose owner is not proven dead is kept")
				require.Len(t, rec.HeldLocks, 1)
				assert.Empty(t, rec.StaleLocks)
				b, err := json.Marshal(rec.HeldLocks[0])
				require.NoError(t, err)
				assert.Contains(t, string(b), `"ageSeconds":`)
			}
		})
	}
}

func TestRestoreFromBackup_RepairOnlyWhenSafeOrAllowed(t *testing.T) {
	ctx := context.Background()
	k8s := `{"version":3,"checkpoint":{"latest":{"resources":[{"urn":"urn:pulumi:dev::proj::kubernetes:core/v1:ConfigMap::cm","custom":true,"type":"kubernetes:core/v1:ConfigMap"}]}}}`
	aws := `{"version":3,"checkpoint":{"latest":{"resources":[{"urn":"urn:pulumi:dev::proj::aws:ec2/vpc:Vpc::vpc","custom":true,"type":"aws:ec2/vpc:Vpc"}]}}}`
	for _, tc := range []struct {
		name         string
		backup       string
		repair       bool
		otherLock    bool
		metadataOnly bool
		wantRestored bool
		wantErr      string
	}{
		{name: "Kubernetes only", backup: k8s, wantRestored: true},
		{name: "an AWS resource", backup: aws, wantErr: "rerun with --repair"},
		{name: "an AWS resource with repair", backup: aws, repair: true, wantRestored: true},
		{name: "locked by a live update", backup: k8s, otherLock: true, wantErr: "lock could not be taken"},
		{name: "only the metadata sidecar is broken", backup: aws, metadataOnly: true, wantRestored: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, dir := fileStore(t)
			cp := filepath.Join(dir, ".pulumi", "stacks", "proj", "dev.json")
			require.NoError(t, os.MkdirAll(filepath.Dir(cp), 0o755))
			require.NoError(t, os.WriteFile(cp+".bak", []byte(tc.backup), 0o600))
			require.NoError(t, os.WriteFile(cp, []byte(`{"version":3,"checkpo`), 0o600)) // killed mid-write
			if tc.metadataOnly {
				require.NoError(t, os.WriteFile(cp, []byte(k8s), 0o600))
				require.NoError(t, os.WriteFile(cp+".attrs", nil, 0o600)) // killed while writing the sidecar
			}
			if tc.otherLock {
				host, err := os.Hostname()
				require.NoError(t, err)
				writeLock(t, dir, "live", statestore.Lock{PID: os.Getpid(), Hostname: host, Timestamp: time.Now()})
			}
			kept, fromBackup, err := RestoreCheckpoint(ctx, store, "proj", "dev", tc.repair, slog.New(slog.DiscardHandler))
			b, rerr := os.ReadFile(cp)
			require.NoError(t, rerr)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Equal(t, `{"version":3,"checkpo`, string(b), "nothing is restored")
				if !tc.otherLock {
					assert.True(t, IsRepairRequired(err))
					assert.Contains(t, err.Error(), "aws:ec2/vpc:Vpc")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, !tc.metadataOnly, fromBackup)
			if tc.metadataOnly {
				assert.JSONEq(t, k8s, string(b), "only the metadata was broken: the content stays")
				return
			}
			assert.JSONEq(t, tc.backup, string(b))
			kb, rerr := os.ReadFile(kept)
			require.NoError(t, rerr)
			assert.Equal(t, `{"version":3,"checkpo`, string(kb), "the broken checkpoint is kept for inspection")
			locks, err := store.Locks(ctx, "proj", "dev")
			require.NoError(t, err)
			assert.Empty(t, locks, "the recovery lock is released")

			again, _, err := RestoreCheckpoint(ctx, store, "proj", "dev", tc.repair, slog.New(slog.DiscardHandler))
			require.NoError(t, err)
			assert.Empty(t, again, "a valid checkpoint is left alone")
		})
	}
}

func TestRepairRequiredError_SaysWhatToDo(t *testing.T) {
	err := &RepairRequiredError{Project: "p", Stack: "dev", Pending: []PendingOperation{{Op: "creating", URN: "urn:x", Type: "aws:ec2/vpc:Vpc", Reason: "could orphan it"}}}
	assert.Contains(t, err.Error(), "1 pending create(s)")
	assert.Contains(t, err.Error(), "creating urn:x (could orphan it)")
	assert.Contains(t, err.Error(), "automation.WithRepair()")
	assert.True(t, IsRepairRequired(fmt.Errorf("automation: up of stack dev: %w", err)))
	assert.False(t, IsRepairRequired(assert.AnError))
}
