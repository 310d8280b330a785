package operator

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipwayhq/slipway/automation/fleet"
	"github.com/slipwayhq/slipway/automation/fleet/api/v1alpha1"
	"github.com/slipwayhq/slipway/automation/fleet/gitsource"
)

// fetchTimeout bounds one read of a Git source.
const fetchTimeout = 2 * time.Minute

// sources remembers each Environment's last Git fetch, so a source is read
// at most once per interval (and again at once when it changes).
type sources struct {
	mu sync.Mutex
	m  map[types.NamespacedName]fetched
}

// fetched is the outcome of an Environment's last fetch.
type fetched struct {
	uid    types.UID
	key    string // the source spec it was fetched for
	at     time.Time
	result gitsource.Result
	ok     bool   // result holds a successful fetch of key
	err    string // the last fetch's error; "" when it succeeded
}

func (c *sources) get(k types.NamespacedName) (fetched, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.m[k]
	return f, ok
}

func (c *sources) put(k types.NamespacedName, f fetched) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[types.NamespacedName]fetched{}
	}
	c.m[k] = f
}

func (c *sources) forget(k types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// inputs resolves the Environment's inputs: the spec's, with the
// parameters of its Git source merged in, and the source's commit. ok is
// false while no fetch of the source has succeeded; invalid is an error of
// the inputs themselves (a *fleet.FieldError).
func (p *pass) inputs(ctx context.Context) (in v1alpha1.Inputs, commit string, ok bool, invalid error) {
	env, s := p.env, &p.env.Status
	in = *env.Spec.Inputs.DeepCopy()
	src := env.Spec.Source
	if src == nil {
		s.SourceRevision = ""
		return in, "", true, nil
	}
	f := p.fetch(ctx, src)
	ready := meta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady)
	switch {
	case f.err != "" && s.LastAppliedRevision == "":
		p.cond(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonSourceFailed, "reading spec.source: "+f.err)
	case f.err == "" && ready != nil && ready.Reason == ReasonSourceFailed:
		p.cond(v1alpha1.ConditionReady, metav1.ConditionUnknown, ReasonProgressing, "spec.source was read")
	}
	if !f.ok {
		return in, "", false, nil
	}
	if f.result.Commit != s.SourceRevision {
		p.event(corev1.EventTypeNormal, EventSourceUpdated, nil, "%s at %s: commit %s", src.URL, src.Path, f.result.Commit)
		s.SourceRevision = f.result.Commit
	}
	var raw []byte
	if in.Params != nil {
		raw = in.Params.Raw
	}
	merged, err := fleet.MergeParams(raw, f.result.Content, src.Path)
	if err != nil {
		return in, f.result.Commit, true, err
	}
	in.Params = &apiextensionsv1.JSON{Raw: merged}
	return in, f.result.Commit, true, nil
}

// fetch reads the source when its interval passed (or it changed) and
// returns the latest outcome; a failure keeps the last good content. A new
// failure is reported at once with Event SourceFailed.
func (p *pass) fetch(ctx context.Context, src *v1alpha1.GitSource) fetched {
	interval := DefaultSourceInterval
	if src.Interval != nil && src.Interval.Duration > 0 {
		interval = src.Interval.Duration
	}
	k := client.ObjectKeyFromObject(p.env)
	key := fmt.Sprintf("%s|%s|%s|%s|%s|%s", src.URL, src.Ref.Branch, src.Ref.Tag, src.Ref.Commit, src.Path, src.SecretRef)
	last, had := p.r.sources.get(k)
	same := had && last.uid == p.env.UID && last.key == key
	if same && p.now.Before(last.at.Add(interval)) {
		p.at(last.at.Add(interval))
		return last
	}
	f := fetched{uid: p.env.UID, key: key, at: p.now}
	if same {
		f.result, f.ok = last.result, last.ok
	}
	res, err := p.git(ctx, src)
	if err == nil {
		f.result, f.ok = res, true
	} else {
		f.err = err.Error()
		if !same || last.err != f.err {
			p.r.recorder.Eventf(p.env, nil, corev1.EventTypeWarning, EventSourceFailed, "Reconcile", "%s", clip("reading spec.source: "+f.err, 1000))
			p.r.Options.Logger.Warn("reading the Git source failed", "environment", k.String(), "error", f.err)
		}
	}
	p.r.sources.put(k, f)
	p.at(f.at.Add(interval))
	return f
}

// git reads the source's file, with the credentials of spec.source.secretRef
// (read uncached: the operator may only get Secrets).
func (p *pass) git(ctx context.Context, src *v1alpha1.GitSource) (gitsource.Result, error) {
	gs := gitsource.Source{URL: src.URL, Branch: src.Ref.Branch, Tag: src.Ref.Tag, Commit: src.Ref.Commit, Path: src.Path}
	if src.SecretRef != "" {
		sec := &corev1.Secret{}
		if err := p.r.reader.Get(ctx, client.ObjectKey{Namespace: p.env.Namespace, Name: src.SecretRef}, sec); err != nil {
			return gitsource.Result{}, fmt.Errorf("spec.source.secretRef: %w", err)
		}
		auth, err := gitsource.AuthFromSecret(sec.Data)
		if err != nil {
			return gitsource.Result{}, fmt.Errorf("spec.source.secretRef: Secret %s: %w", src.SecretRef, err)
		}
		gs.Auth = auth
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	return p.r.Options.Git(ctx, gs)
}
