package engine

import (
	"errors"
	"fmt"
	"strings"
)

// RecordsError refuses a backend that Slipway keeps no records in: its
// release history, run history, approvals and ephemeral tags would stay on
// one machine. WithLocalRecords (the CLI's --local-records) accepts that.
// Get it with errors.As.
type RecordsError struct {
	// Backend is the backend URL, without its query.
	Backend string
}

// Error names what would be lost and both ways out.
func (e *RecordsError) Error() string {
	return fmt.Sprintf("automation: backend %s has no driver for Slipway's records (release history for rollback, run history, "+
		"approval requests and decisions, ephemeral tags): they would live only in this machine's directory, where rollback, approvals, "+
		"gc and the dashboard on any other machine cannot see them; use a file:// or s3:// backend, or accept local records with "+
		"WithLocalRecords (--local-records)", e.Backend)
}

// UnknownStackError says an operation named a stack the backend does not hold.
type UnknownStackError struct {
	Project, Stack string
	// Known lists the stacks of the project in the backend.
	Known []string
}

// Error implements error.
func (e *UnknownStackError) Error() string {
	known := "none"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("automation: environment %q does not exist in project %s (it has: %s); check the name, or create it with up", e.Stack, e.Project, known)
}

// IsUnknownStack reports whether err is (or wraps) an *UnknownStackError.
func IsUnknownStack(err error) bool {
	var u *UnknownStackError
	return errors.As(err, &u)
}

// MissingPluginError says a program needs a resource plugin that is neither
// installed nor given, and the engine may not download it.
// Get it with errors.As (a *MissingPluginError).
type MissingPluginError struct {
	Plugin Plugin
	// Path is where the engine looks for it.
	Path string
}

// Error implements error.
func (e *MissingPluginError) Error() string {
	return fmt.Sprintf("automation: the program needs the resource plugin %s v%s, which Slipway does not build and does not download by default; "+
		"install it as %s, or pass automation.WithPlugin(%q, %q, \"/path/to/pulumi-resource-%s\") (CLI: --plugin %s=/path/to/pulumi-resource-%s), "+
		"or, with a network, let the engine download it: automation.WithPluginDownload() (CLI: --allow-plugin-download)",
		e.Plugin.Name, e.Plugin.Version, e.Path, e.Plugin.Name, e.Plugin.Version, e.Plugin.Name, e.Plugin.Name, e.Plugin.Name)
}

// ChangesFoundError says an operation run with ExpectNoChanges found changes;
// the operation itself succeeded.
type ChangesFoundError struct {
	Op, Stack string
	// Changes is the number of resources that would change (or drifted).
	Changes int
}

// Error implements error.
func (e *ChangesFoundError) Error() string {
	return fmt.Sprintf("automation: %s of stack %s found %d change(s) where none were expected", e.Op, e.Stack, e.Changes)
}

// IsChangesFound reports whether err is (or wraps) a *ChangesFoundError.
func IsChangesFound(err error) bool {
	var c *ChangesFoundError
	return errors.As(err, &c)
}
