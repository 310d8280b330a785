package statestore

import (
	"context"

	"github.com/slipwayhq/slipway/automation/fence"
)

// fencedDriver refuses writes, creates and deletes once the fence file at
// path has passed its deadline (see package fence): Slipway's own records
// and lock recovery obey the same fence as the engine.
type fencedDriver struct {
	Driver
	path string
}

// Fenced returns d with its writes fenced by the fence file at path.
func Fenced(d Driver, path string) Driver { return &fencedDriver{Driver: d, path: path} }

func (d *fencedDriver) Write(ctx context.Context, key string, data []byte) error {
	ctx, cancel, err := fence.Check(ctx, d.path, "write", d.Location(key))
	defer cancel()
	if err != nil {
		return err
	}
	return d.Driver.Write(ctx, key, data)
}

func (d *fencedDriver) Create(ctx context.Context, key string, data []byte) error {
	ctx, cancel, err := fence.Check(ctx, d.path, "create", d.Location(key))
	defer cancel()
	if err != nil {
		return err
	}
	return d.Driver.Create(ctx, key, data)
}

func (d *fencedDriver) Delete(ctx context.Context, key string) error {
	ctx, cancel, err := fence.Check(ctx, d.path, "delete", d.Location(key))
	defer cancel()
	if err != nil {
		return err
	}
	return d.Driver.Delete(ctx, key)
}
