//go:build !unix

package statestore

import (
	"errors"
	"os"
	"time"
)

var (
	errNoProcess  = errors.New("no such process")
	errPermission = errors.New("operation not permitted")
)

// osProbe proves nothing on platforms without signals and /proc: every
// lock's liveness is Unknown there.
type osProbe struct{}

var sys probe = osProbe{}

func (osProbe) hostname() (string, error) { return os.Hostname() }

func (osProbe) signal0(int) error { return errors.ErrUnsupported }

func (osProbe) stat(int) ([]byte, error) { return nil, errors.ErrUnsupported }

func (osProbe) bootTime() (time.Time, error) { return time.Time{}, errors.ErrUnsupported }
