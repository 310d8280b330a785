package statestore

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// s3URL starts an S3-compatible server (gofakes3, in memory) on loopback
// and returns a backend URL in Pulumi's syntax for one of its buckets.
func s3URL(t *testing.T) string {
	t.Helper()
	be := s3mem.New()
	require.NoError(t, be.CreateBucket("state"))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: gofakes3.New(be, gofakes3.WithTimeSkewLimit(0)).Server(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	return "s3://state?endpoint=http://" + l.Addr().String() + "&use_path_style=true&disable_https=true&region=us-east-1"
}

var s3Env = map[string]string{"AWS_ACCESS_KEY_ID": "slipway", "AWS_SECRET_ACCESS_KEY": "slipway-test-secret"}

// backends opens one Store per driver, each on an empty backend in Pulumi's
// project-scoped layout: the conformance tests run against all of them.
func backends(t *testing.T) map[string]*Store {
	t.Helper()
	ctx := context.Background()
	out := map[string]*Store{}
	for name, url := range map[string]string{"file": "file://" + t.TempDir(), "s3": s3URL(t)} {
		s, err := Open(ctx, url, s3Env)
		require.NoError(t, err, name)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		require.NoError(t, s.d.Write(ctx, metaKey, []byte("version: 1\n")))
		out[name] = s
	}
	return out
}

func TestOpenDriver_SelectsByURL(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		url     string
		wantErr string
	}{
		{url: "file://" + t.TempDir()},
		{url: "file://" + t.TempDir() + "?no_tmp_dir=true"},
		{url: "s3://bucket?region=us-east-1&endpoint=http://127.0.0.1:1&use_path_style=true"},
		{url: "gs://bucket", wantErr: "no driver for this backend: gs://bucket"},
		{url: "https://api.pulumi.com", wantErr: "no driver for this backend"},
		{url: "s3://bucket?use_path_style=maybe", wantErr: `use_path_style="maybe" is not a boolean`},
		{url: "s3://bucket?nonsense=1", wantErr: `unknown query parameter "nonsense"`},
	} {
		t.Run(tc.url, func(t *testing.T) {
			d, err := OpenDriver(ctx, tc.url, nil)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.NoError(t, d.Close())
		})
	}
}

func lockJSON(t *testing.T, l Lock) []byte {
	t.Helper()
	b, err := json.Marshal(l)
	require.NoError(t, err)
	return b
}

func TestStore_LocksConformance(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			host, err := os.Hostname()
			require.NoError(t, err)
			dead := ".pulumi/locks/organization/proj/dev/dead.json"
			legacy := ".pulumi/locks/dev/legacy.json"
			other := ".pulumi/locks/organization/proj/qa/other.json"
			require.NoError(t, s.d.Write(ctx, dead, lockJSON(t, Lock{PID: 1 << 30, Hostname: host, Timestamp: time.Now()})))
			require.NoError(t, s.d.Write(ctx, legacy, []byte(`{"pid":`)))
			require.NoError(t, s.d.Write(ctx, other, lockJSON(t, Lock{PID: 1, Hostname: host})))

			locks, err := s.Locks(ctx, "proj", "dev")
			require.NoError(t, err)
			require.Len(t, locks, 2, "both layouts, only this stack")
			assert.Equal(t, dead, locks[0].Key)
			assert.NoError(t, locks[0].Err)
			assert.Equal(t, 1<<30, locks[0].PID)
			live, why := locks[0].Liveness()
			assert.Equal(t, Dead, live, why)
			assert.Equal(t, legacy, locks[1].Key)
			assert.ErrorContains(t, locks[1].Err, "not Pulumi's lock JSON", "an unreadable lock is reported, not dropped")
			live, _ = locks[1].Liveness()
			assert.Equal(t, Unknown, live)

			// The Store's own lock is refused while another lock exists, and leaves nothing behind.
			_, err = s.Lock(ctx, "proj", "dev")
			var le *StackLockedError
			require.ErrorAs(t, err, &le)
			assert.Len(t, le.Locks, 2)
			after, err := s.Locks(ctx, "proj", "dev")
			require.NoError(t, err)
			assert.Len(t, after, 2, "a refused lock removes its own file")

			require.NoError(t, s.RemoveLock(ctx, dead))
			require.NoError(t, s.RemoveLock(ctx, legacy))
			require.NoError(t, s.RemoveLock(ctx, legacy), "removing a removed lock is not an error")
			assert.ErrorContains(t, s.RemoveLock(ctx, ".pulumi/stacks/proj/dev.json"), "not a lock file key")

			unlock, err := s.Lock(ctx, "proj", "dev")
			require.NoError(t, err)
			held, err := s.Locks(ctx, "proj", "dev")
			require.NoError(t, err)
			require.Len(t, held, 1)
			assert.Equal(t, os.Getpid(), held[0].PID, "the lock is in Pulumi's format, naming this process")
			assert.Equal(t, host, held[0].Hostname)
			assert.Contains(t, held[0].Key, ".pulumi/locks/organization/proj/dev/", "project-scoped layout")
			live, why = held[0].Liveness()
			assert.Equal(t, Alive, live, why)
			_, err = s.Lock(ctx, "proj", "dev")
			require.ErrorAs(t, err, &le, "a second locker is refused")
			require.NoError(t, unlock(ctx))
			gone, err := s.Locks(ctx, "proj", "dev")
			require.NoError(t, err)
			assert.Empty(t, gone)
		})
	}
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func TestStore_CheckpointRestoreConformance(t *testing.T) {
	ctx := context.Background()
	good := []byte(`{"version":3,"checkpoint":{"stack":"organization/proj/dev"}}`)
	for name, s := range backends(t) {
		for _, tc := range []struct {
			name, key        string
			broken, backup   []byte
			wantRestored     bool
			wantErr          string
			wantBrokenStored []byte
		}{
			{name: "truncated", key: ".pulumi/stacks/proj/dev.json", broken: []byte(`{"version":3,"checkpo`), backup: good, wantRestored: true},
			{name: "empty", key: ".pulumi/stacks/proj/dev.json", broken: []byte{}, backup: good, wantRestored: true},
			{name: "valid is left alone", key: ".pulumi/stacks/proj/dev.json", broken: good, backup: []byte("x")},
			{name: "no usable backup", key: ".pulumi/stacks/proj/dev.json", broken: []byte(`{`), backup: []byte(`{"ver`), wantErr: "is broken and has no usable backup"},
			{name: "gzip truncated", key: ".pulumi/stacks/proj/dev.json.gz", broken: gz(t, good)[:20], backup: gz(t, good), wantRestored: true},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				for _, k := range checkpointKeys("proj", "dev") {
					require.NoError(t, s.d.Delete(ctx, k))
					require.NoError(t, s.d.Delete(ctx, k+backupSuffix))
				}
				require.NoError(t, s.d.Write(ctx, tc.key, tc.backup))
				require.NoError(t, s.WriteCheckpoint(ctx, Checkpoint{Key: tc.key, Data: tc.broken}), "the previous checkpoint becomes the backup")
				bak, err := s.d.Read(ctx, tc.key+backupSuffix)
				require.NoError(t, err)
				assert.Equal(t, tc.backup, bak)

				kept, fromBackup, err := s.RestoreCheckpoint(ctx, "proj", "dev")
				if tc.wantErr != "" {
					require.ErrorContains(t, err, tc.wantErr)
					return
				}
				require.NoError(t, err)
				assert.Equal(t, tc.wantRestored, fromBackup)
				c, err := s.ReadCheckpoint(ctx, "proj", "dev")
				require.NoError(t, err)
				assert.Equal(t, tc.key, c.Key)
				assert.False(t, c.Broken())
				if !tc.wantRestored {
					assert.Empty(t, kept)
					assert.Equal(t, tc.broken, c.Data)
					return
				}
				require.NotEmpty(t, kept)
				assert.Equal(t, tc.backup, c.Data, "the backup is the checkpoint again")
				j, err := c.JSON()
				require.NoError(t, err)
				assert.JSONEq(t, string(good), string(j))
				b, err := s.Read(ctx, kept)
				require.NoError(t, err)
				assert.Equal(t, tc.broken, b, "the broken checkpoint is kept for inspection")
				assert.Contains(t, s.Location(kept), ".pulumi/slipway/broken/proj/dev/")
			})
		}
		t.Run(name+"/missing", func(t *testing.T) {
			_, err := s.ReadCheckpoint(ctx, "proj", "nope")
			assert.ErrorIs(t, err, fs.ErrNotExist)
			_, _, err = s.RestoreCheckpoint(ctx, "proj", "nope")
			assert.ErrorIs(t, err, fs.ErrNotExist)
		})
	}
}

func TestStore_ReleasesConformance(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			empty, err := s.Releases(ctx, "proj", "dev")
			require.NoError(t, err)
			assert.Empty(t, empty)

			t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
			first, second := NewReleaseName(t0), NewReleaseName(t0.Add(time.Nanosecond))
			require.Less(t, first, second, "names sort by time")
			ck, err := s.WriteRelease(ctx, "proj", "dev", second, []byte(`{"n":2}`), []byte(`{"deployment":{}}`))
			require.NoError(t, err)
			assert.Equal(t, ".pulumi/slipway/releases/proj/dev/checkpoints/"+second+".json", ck)
			_, err = s.WriteRelease(ctx, "proj", "dev", first, []byte(`{"n":1}`), nil)
			require.NoError(t, err)
			_, err = s.WriteRelease(ctx, "proj", "qa", first, []byte(`{"n":9}`), nil)
			require.NoError(t, err)

			got, err := s.Releases(ctx, "proj", "dev")
			require.NoError(t, err)
			require.Len(t, got, 2, "only this stack's records, not the checkpoints")
			assert.Equal(t, []Entry{{Name: first, Data: []byte(`{"n":1}`)}, {Name: second, Data: []byte(`{"n":2}`)}}, got)
			b, err := s.Read(ctx, ck)
			require.NoError(t, err)
			assert.Equal(t, `{"deployment":{}}`, string(b))

			require.NoError(t, s.DeleteRelease(ctx, "proj", "dev", second))
			got, err = s.Releases(ctx, "proj", "dev")
			require.NoError(t, err)
			assert.Len(t, got, 1)
			_, err = s.Read(ctx, ck)
			assert.ErrorIs(t, err, fs.ErrNotExist, "the checkpoint goes with its record")
		})
	}
}

// A process killed while the file backend writes an object leaves its
// metadata sidecar (<file>.attrs) empty: Pulumi can no longer read the
// object although its content is whole.
func TestStore_FileMetadataSidecarBroken(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, "file://"+dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	require.NoError(t, s.d.Write(ctx, metaKey, []byte("version: 1\n")))
	good := []byte(`{"version":3,"checkpoint":{}}`)
	const key = ".pulumi/stacks/proj/dev.json"
	require.NoError(t, s.d.Write(ctx, key+backupSuffix, []byte(`{"version":3,"checkpoint":{"older":true}}`)))
	require.NoError(t, s.d.Write(ctx, key, good))
	require.NoError(t, os.WriteFile(dir+"/"+key+".attrs", nil, 0o600))
	lock := ".pulumi/locks/organization/proj/dev/x.json"
	require.NoError(t, s.d.Write(ctx, lock, lockJSON(t, Lock{PID: 1 << 30, Hostname: "h"})))
	require.NoError(t, os.WriteFile(dir+"/"+lock+".attrs", nil, 0o600))

	c, err := s.ReadCheckpoint(ctx, "proj", "dev")
	require.NoError(t, err)
	assert.ErrorIs(t, c.Metadata, ErrMetadata)
	assert.True(t, c.Broken(), "Pulumi cannot load it")
	_, jerr := c.JSON()
	assert.NoError(t, jerr, "the content is whole")
	locks, err := s.Locks(ctx, "proj", "dev")
	require.NoError(t, err)
	require.Len(t, locks, 1)
	assert.NoError(t, locks[0].Err, "a lock is read from its content")
	assert.Equal(t, 1<<30, locks[0].PID)

	kept, fromBackup, err := s.RestoreCheckpoint(ctx, "proj", "dev")
	require.NoError(t, err)
	assert.NotEmpty(t, kept)
	assert.False(t, fromBackup, "the content is kept, not replaced by the older backup")
	c, err = s.ReadCheckpoint(ctx, "proj", "dev")
	require.NoError(t, err)
	assert.NoError(t, c.Metadata)
	assert.Equal(t, good, c.Data)
}

func TestCheckpoint_DeploymentIsTheExportOfItsLatestSnapshot(t *testing.T) {
	latest := `{"manifest":{"time":"2026-01-01T00:00:00Z"},"resources":[{"urn":"urn:pulumi:dev::proj::kubernetes:core/v1:Secret::s",` +
		`"outputs":{"data":{"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","ciphertext":"v1:abc:def"}}}],` +
		`"pending_operations":[{"resource":{"urn":"u"},"type":"creating"}]}`
	plain := []byte(`{"version":3,"checkpoint":{"stack":"dev","latest":` + latest + `}}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain)
	require.NoError(t, zw.Close())
	for name, cp := range map[string]Checkpoint{
		"plain": {Key: ".pulumi/stacks/proj/dev.json", Data: plain},
		"gzip":  {Key: ".pulumi/stacks/proj/dev.json.gz", Data: gz.Bytes()},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := cp.Deployment()
			require.NoError(t, err)
			assert.Equal(t, 3, d.Version)
			assert.JSONEq(t, latest, string(d.Deployment), "the deployment is the latest snapshot, byte for byte")
			b, err := json.Marshal(d)
			require.NoError(t, err)
			assert.Contains(t, string(b), `"ciphertext":"v1:abc:def"`, "secrets stay encrypted")
			assert.Contains(t, string(b), `"deployment":{`, "the shape of pulumi stack export")
		})
	}
	t.Run("never updated", func(t *testing.T) {
		d, err := Checkpoint{Key: "k.json", Data: []byte(`{"version":3,"checkpoint":{"stack":"dev","latest":null}}`)}.Deployment()
		require.NoError(t, err)
		assert.Nil(t, d.Deployment)
	})
	t.Run("features of version 4", func(t *testing.T) {
		d, err := Checkpoint{Key: "k.json", Data: []byte(`{"version":4,"features":["refreshBeforeUpdate"],"checkpoint":{"latest":{"resources":[]}}}`)}.Deployment()
		require.NoError(t, err)
		assert.Equal(t, 4, d.Version)
		assert.Equal(t, []string{"refreshBeforeUpdate"}, d.Features)
	})
	for name, data := range map[string]string{"truncated": `{"version":3,"checkpoint":{"la`, "version 1": `{"version":1,"checkpoint":{}}`} {
		t.Run(name, func(t *testing.T) {
			_, err := Checkpoint{Key: "k.json", Data: []byte(data)}.Deployment()
			assert.Error(t, err)
		})
	}
}

func TestExists_OnlyTheProjectScopedCheckpoint(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ok, err := s.Exists(ctx, "proj", "dev")
			require.NoError(t, err)
			assert.False(t, ok, "no checkpoint yet")
			require.NoError(t, s.d.Write(ctx, ".pulumi/stacks/proj/dev.json.bak", []byte("{}")))
			require.NoError(t, s.d.Write(ctx, ".pulumi/stacks/proj/dev-2.json", []byte("{}")))
			require.NoError(t, s.d.Write(ctx, ".pulumi/stacks/other/dev.json", []byte("{}")))
			ok, err = s.Exists(ctx, "proj", "dev")
			require.NoError(t, err)
			assert.False(t, ok, "a backup, another stack or another project's stack is not the stack")
			require.NoError(t, s.d.Write(ctx, ".pulumi/stacks/proj/dev.json.gz", []byte("x")))
			ok, err = s.Exists(ctx, "proj", "dev")
			require.NoError(t, err)
			assert.True(t, ok, "a gzip checkpoint")
			require.NoError(t, s.d.Write(ctx, ".pulumi/stacks/proj/dev.json", []byte("{}")))
			ok, err = s.Exists(ctx, "proj", "dev")
			require.NoError(t, err)
			assert.True(t, ok)
		})
	}
	t.Run("legacy layout", func(t *testing.T) {
		s, err := Open(ctx, "file://"+t.TempDir(), nil)
		require.NoError(t, err)
		defer s.Close()
		require.NoError(t, s.d.Write(ctx, ".pulumi/stacks/dev.json", []byte("{}")))
		ok, err := s.Exists(ctx, "proj", "dev")
		require.NoError(t, err)
		assert.False(t, ok, "without meta.yaml the store cannot tell; the CLI decides")
	})
}
