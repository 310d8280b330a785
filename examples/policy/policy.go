// Package policy is a team's own policy pack, "acme", with two rules that
// show the two things a rule of one's own most often needs:
//
//   - required-labels reads its configuration: the label keys every
//     Namespace must carry (default team and cost-center), which an
//     environment can change per policy (policypacks.Settings.Overrides, or
//     the fleet's policy settings) without a new binary;
//   - image-by-digest is unknown-aware: during a preview a container image
//     computed from another resource's output is not known yet, and the
//     rule says so (an unverified finding) instead of passing it silently.
//
// The same pack blocks previews and updates inside the Pulumi engine (a
// thin binary registers it with cli.PolicyPacks, see cmd/acmectl) and runs
// in unit tests over a mocked graph (policypacks.Evaluate).
package policy

import (
	"fmt"
	"slices"
	"strings"

	p "github.com/slipwayhq/slipway/policypacks"
)

// Resource types the rules judge.
const (
	Namespace  = "kubernetes:core/v1:Namespace"
	Deployment = "kubernetes:apps/v1:Deployment"
)

// Pack returns the acme pack: --policy acme selects it.
func Pack() *p.Pack {
	return &p.Pack{Name: "acme", Version: "1.0.0", Policies: []*p.Policy{requiredLabels(), imageByDigest()}}
}

// requiredLabels: every Namespace carries the configured label keys.
func requiredLabels() *p.Policy {
	return &p.Policy{
		Name: "required-labels", Description: "Namespaces carry the labels the team's cost reports and on-call routing need",
		Severity: p.Medium, Enforcement: p.Mandatory, Types: []string{Namespace},
		Config:       p.Config{"labels": []any{"team", "cost-center"}},
		ConfigSchema: map[string]map[string]any{"labels": {"type": "array", "items": map[string]any{"type": "string"}}},
		Validate: func(r p.Resource, a *p.Args) {
			labels, st := r.Props.Map("metadata.labels")
			if st == p.Unknowable {
				a.Unverifiable(r.URN, "the labels of Namespace %s are not known until update", r.Name)
				return
			}
			var missing []string
			for _, k := range a.Config.Strings("labels") {
				if _, ok := labels[k]; !ok {
					missing = append(missing, k)
				}
			}
			a.Check(r, p.Known, len(missing) == 0, "Namespace %s lacks the label(s) %s; add them to metadata.labels",
				r.Name, strings.Join(missing, ", "))
		},
	}
}

// imageByDigest: every container image of a Deployment is pinned by digest.
func imageByDigest() *p.Policy {
	return &p.Policy{
		Name: "image-by-digest", Description: "Deployments run images pinned by digest (repo@sha256:...), so what was reviewed is what runs",
		Severity: p.High, Enforcement: p.Mandatory, Types: []string{Deployment},
		Controls: []p.Control{{Framework: p.PCI, ID: "6.3.2"}},
		Validate: func(r p.Resource, a *p.Args) {
			containers, st := r.Props.List("spec.template.spec.containers")
			if st == p.Unknowable {
				a.Unverifiable(r.URN, "the containers of Deployment %s are not known until update", r.Name)
				return
			}
			for i := range containers {
				img, st := r.Props.String(fmt.Sprintf("spec.template.spec.containers.%d.image", i))
				// Check reports an unknown image as unverified, never as a pass.
				a.Check(r, st, pinned(img), "Deployment %s runs image %q, not pinned by digest; use %s@sha256:<digest>",
					r.Name, img, strings.SplitN(img, ":", 2)[0])
			}
		},
	}
}

// pinned reports whether an image reference names a sha256 digest.
func pinned(image string) bool {
	_, digest, ok := strings.Cut(image, "@")
	return ok && strings.HasPrefix(digest, "sha256:") && len(digest) == len("sha256:")+64 &&
		!slices.ContainsFunc([]byte(digest[7:]), func(c byte) bool { return !strings.ContainsRune("0123456789abcdef", rune(c)) })
}
