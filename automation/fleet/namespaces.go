package fleet

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// Namespaces are the namespaces a namespaced fleet serves: its operator and
// runners watch, and act on, Environments and Runs of these namespaces
// only, and their RBAC (package install) grants access there only. Empty
// means every namespace (the cluster-wide mode).
type Namespaces []string

// ParseNamespaces splits a comma-separated list ("a,b"), dropping spaces
// and empty items, and checks it (see Check); field names the flag or
// option in the error.
func ParseNamespaces(field, list string) (Namespaces, error) {
	var ns Namespaces
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			ns = append(ns, s)
		}
	}
	if len(ns) == 0 && strings.TrimSpace(list) != "" {
		return nil, fmt.Errorf("%s: %q lists no namespace; list namespace names separated by commas, e.g. team-a,team-b", field, list)
	}
	return ns, ns.Check(field)
}

// Check refuses a list holding a name that is not a namespace name, or a
// name twice, naming field and the fix.
func (n Namespaces) Check(field string) error {
	for i, s := range n {
		if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
			return fmt.Errorf("%s: %q is not a namespace name (%s); list namespace names separated by commas, e.g. team-a,team-b", field, s, errs[0])
		}
		if slices.Contains(n[:i], s) {
			return fmt.Errorf("%s: namespace %q is listed twice; list each namespace once", field, s)
		}
	}
	return nil
}

// All reports whether n is the cluster-wide mode (no list).
func (n Namespaces) All() bool { return len(n) == 0 }

// Serves reports whether objects of namespace ns are the fleet's: always
// in the cluster-wide mode, else only when ns is listed.
func (n Namespaces) Serves(ns string) bool { return n.All() || slices.Contains(n, ns) }

// Cache returns the controller-runtime cache's DefaultNamespaces for n:
// nil (every namespace) in the cluster-wide mode, else one entry per
// listed namespace, so the processes list and watch nothing elsewhere.
func (n Namespaces) Cache() map[string]cache.Config {
	if n.All() {
		return nil
	}
	m := make(map[string]cache.Config, len(n))
	for _, s := range n {
		m[s] = cache.Config{}
	}
	return m
}

// String is the comma-separated list ("" in the cluster-wide mode).
func (n Namespaces) String() string { return strings.Join(n, ",") }
