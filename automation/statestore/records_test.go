package statestore

import (
	"context"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStore_RecordsConformance(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			empty, err := s.List(ctx, "runs", "")
			require.NoError(t, err)
			assert.Empty(t, empty)
			_, err = s.Get(ctx, "runs", "proj/dev/none")
			assert.ErrorIs(t, err, fs.ErrNotExist)

			t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
			a, b := NewReleaseName(t0), NewReleaseName(t0.Add(time.Second))
			require.NoError(t, s.Put(ctx, "runs", "proj/dev/"+b, []byte(`{"n":2}`)))
			require.NoError(t, s.Put(ctx, "runs", "proj/dev/"+a, []byte(`{"n":1}`)))
			require.NoError(t, s.Put(ctx, "runs", "proj/dev-2/"+a, []byte(`{"n":3}`)))
			require.NoError(t, s.Put(ctx, "approvals", a, []byte(`{"n":4}`)))

			got, err := s.List(ctx, "runs", "proj/dev/")
			require.NoError(t, err)
			assert.Equal(t, []Entry{{Name: "proj/dev/" + a, Data: []byte(`{"n":1}`)}, {Name: "proj/dev/" + b, Data: []byte(`{"n":2}`)}}, got,
				"sorted by name, only the prefix, not the dev-2 stack")
			names, err := s.Names(ctx, "runs", "")
			require.NoError(t, err)
			assert.Equal(t, []string{"proj/dev-2/" + a, "proj/dev/" + a, "proj/dev/" + b}, names)
			v, err := s.Get(ctx, "approvals", a)
			require.NoError(t, err)
			assert.Equal(t, `{"n":4}`, string(v))

			require.NoError(t, s.Delete(ctx, "runs", "proj/dev/"+a))
			require.NoError(t, s.Delete(ctx, "runs", "proj/dev/"+a), "deleting what is gone is not an error")
			got, err = s.List(ctx, "runs", "proj/dev/")
			require.NoError(t, err)
			assert.Len(t, got, 1)

			_, err = s.WriteRelease(ctx, "proj", "qa", a, []byte(`{}`), []byte(`{}`))
			require.NoError(t, err)
			stacks, err := s.ReleaseStacks(ctx)
			require.NoError(t, err)
			assert.Equal(t, [][2]string{{"proj", "qa"}}, stacks)
		})
	}
}

func TestStore_RecordsRefuseBadNames(t *testing.T) {
	ctx := context.Background()
	s := backends(t)["file"]
	for _, c := range []struct{ kind, name string }{
		{"releases", "x"}, {"Runs", "x"}, {"", "x"}, {"runs", ""}, {"runs", "../x"}, {"runs", "a//b"}, {"runs", "a/.hidden"},
	} {
		err := s.Put(ctx, c.kind, c.name, []byte("{}"))
		assert.Error(t, err, "%s/%s", c.kind, c.name)
	}
}

func TestStore_CreateConformance_ExactlyOneOfConcurrentCreatorsWins(t *testing.T) {
	ctx := context.Background()
	for name, s := range backends(t) {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, s.Create(ctx, "approval-decisions", "first", []byte(`{"n":1}`)))
			err := s.Create(ctx, "approval-decisions", "first", []byte(`{"n":2}`))
			require.ErrorIs(t, err, ErrExist, "a second create of the same name fails")
			got, err := s.Get(ctx, "approval-decisions", "first")
			require.NoError(t, err)
			assert.Equal(t, `{"n":1}`, string(got), "the first record stands")

			const n = 8
			errs := make(chan error, n)
			start := make(chan struct{})
			for i := range n {
				go func() {
					<-start
					errs <- s.Create(ctx, "approval-decisions", "race", []byte(fmt.Sprintf(`{"n":%d}`, i)))
				}()
			}
			close(start)
			won := 0
			for range n {
				err := <-errs
				if err == nil {
					won++
					continue
				}
				require.ErrorIs(t, err, ErrExist)
			}
			assert.Equal(t, 1, won, "exactly one concurrent creator wins")
			names, err := s.Names(ctx, "approval-decisions", "")
			require.NoError(t, err)
			assert.Equal(t, []string{"first", "race"}, names, "no temporary files are left behind")
		})
	}
}
