package review

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/automation/outcome"
	"github.com/slipwayhq/slipway/policypacks"
)

const (
	urnBucket = "urn:pulumi:prod::slipway::aws:s3/bucketV2:BucketV2::data"
	urnCM     = "urn:pulumi:prod::slipway::kubernetes:core/v1:ConfigMap::config"
	urnDep    = "urn:pulumi:prod::slipway::kubernetes:apps/v1:Deployment::app"
	tBucket   = "aws:s3/bucketV2:BucketV2"
	tCM       = "kubernetes:core/v1:ConfigMap"
	tDep      = "kubernetes:apps/v1:Deployment"
)

// replacement is the engine's three steps of one replacement.
func replacement(urn, typ string) []outcome.ResourceChange {
	return []outcome.ResourceChange{{URN: urn, Type: typ, Op: "create-replacement"}, {URN: urn, Type: typ, Op: "replace"},
		{URN: urn, Type: typ, Op: "delete-replaced"}}
}

func TestGateCheck_EmptyGateOnAQuietPreviewPasses(t *testing.T) {
	v := Gate{}.Check(&outcome.Result{Summary: map[string]int{"same": 5}, Resources: []outcome.ResourceChange{{URN: urnCM, Type: tCM, Op: "same"}}})
	assert.True(t, v.Pass)
	assert.Empty(t, v.Reasons)
}

// TestGateCheck_BlockingPolicyFails: a mandatory or remediate finding fails
// the gate with the policy and the last line of its message (the engine
// puts the description first); advisory findings do not.
func TestGateCheck_BlockingPolicyFails(t *testing.T) {
	res := &outcome.Result{Policy: []policypacks.Finding{
		{Policy: "no-privileged", URN: urnDep, Message: "Containers do not run privileged\ncontainer app is privileged", Enforcement: "mandatory"},
		{Policy: "encrypt", URN: urnBucket, Message: "bucket is not encrypted", Enforcement: "remediate"},
		{Policy: "drop-all-capabilities", URN: urnDep, Message: "caps", Enforcement: "advisory"},
	}}
	v := Gate{}.Check(res)
	assert.False(t, v.Pass)
	assert.Equal(t, []string{"policy encrypt: bucket is not encrypted", "policy no-privileged: container app is privileged"}, v.Reasons)

	advisory := &outcome.Result{Policy: res.Policy[2:]}
	assert.True(t, Gate{}.Check(advisory).Pass, "advisory findings do not fail the gate")
}

// TestGateCheck_MaxChanges: the limit counts changed resources (from the
// summary); at the limit passes, above fails, 0 means no limit.
func TestGateCheck_MaxChanges(t *testing.T) {
	res := &outcome.Result{Summary: map[string]int{"create": 2, "update": 1, "same": 10}}
	assert.True(t, Gate{MaxChanges: 3}.Check(res).Pass, "3 changes are within a limit of 3")
	v := Gate{MaxChanges: 2}.Check(res)
	assert.False(t, v.Pass)
	assert.Equal(t, []string{"3 resources would change, more than the limit of 2"}, v.Reasons)
	assert.True(t, Gate{}.Check(res).Pass, "no limit")
}

// TestGateCheck_NoDeletes: deletes (and the delete half of a replacement,
// and discards) fail a NoDeletes gate; creates and updates do not.
func TestGateCheck_NoDeletes(t *testing.T) {
	res := &outcome.Result{Resources: []outcome.ResourceChange{{URN: urnCM, Type: tCM, Op: "delete"}, {URN: urnDep, Type: tDep, Op: "update"},
		{URN: urnBucket, Type: tBucket, Op: "create"}}}
	v := Gate{NoDeletes: true}.Check(res)
	assert.False(t, v.Pass)
	assert.Equal(t, []string{"delete of " + urnCM}, v.Reasons)
	assert.True(t, Gate{NoReplaces: true}.Check(res).Pass, "a delete is not a replacement")

	discard := &outcome.Result{Resources: []outcome.ResourceChange{{URN: urnCM, Type: tCM, Op: "discard"}}}
	assert.Equal(t, []string{"delete of " + urnCM}, Gate{NoDeletes: true}.Check(discard).Reasons)
}

// TestGateCheck_NoReplacesReportsEachReplacementOnce: the engine's
// replace and create-replacement steps of one resource give one reason.
func TestGateCheck_NoReplacesReportsEachReplacementOnce(t *testing.T) {
	res := &outcome.Result{Resources: replacement(urnDep, tDep)}
	v := Gate{NoReplaces: true}.Check(res)
	assert.False(t, v.Pass)
	assert.Equal(t, []string{"replacement of " + urnDep}, v.Reasons, "deduplicated")

	both := Gate{NoReplaces: true, NoDeletes: true}.Check(res)
	assert.Equal(t, []string{"delete of " + urnDep, "replacement of " + urnDep}, both.Reasons, "sorted, one of each")
}

// TestGateCheck_ProtectedTypes: a delete or a replacement of a protected
// type fails even a gate that allows deletes and replacements; other types
// and non-destructive operations on the protected type pass.
func TestGateCheck_ProtectedTypes(t *testing.T) {
	g := Gate{Protected: []string{tBucket}}

	del := g.Check(&outcome.Result{Resources: []outcome.ResourceChange{{URN: urnBucket, Type: tBucket, Op: "delete"}}})
	assert.False(t, del.Pass)
	assert.Equal(t, []string{"delete of protected " + urnBucket}, del.Reasons)

	rep := g.Check(&outcome.Result{Resources: replacement(urnBucket, tBucket)})
	assert.False(t, rep.Pass, "a replacement deletes the protected resource too")
	assert.Equal(t, []string{"replace of protected " + urnBucket}, rep.Reasons, "one reason for the replacement's steps")

	other := g.Check(&outcome.Result{Resources: append(replacement(urnDep, tDep), outcome.ResourceChange{URN: urnCM, Type: tCM, Op: "delete"})})
	assert.True(t, other.Pass, "only the protected types are protected: %v", other.Reasons)

	update := g.Check(&outcome.Result{Resources: []outcome.ResourceChange{{URN: urnBucket, Type: tBucket, Op: "update"}, {URN: urnBucket, Type: tBucket, Op: "create"}}})
	assert.True(t, update.Pass, "updating a protected resource is fine")

	// Protected wins over NoDeletes: one reason naming the protection.
	strict := Gate{Protected: []string{tBucket}, NoDeletes: true}.Check(&outcome.Result{Resources: []outcome.ResourceChange{{URN: urnBucket, Type: tBucket, Op: "delete"}}})
	assert.Equal(t, []string{"delete of protected " + urnBucket}, strict.Reasons)
}

// TestGateCheck_AllReasonsTogetherSortedAndUnique: every failing check
// contributes, duplicates (the same finding twice) collapse, and the
// reasons are sorted.
func TestGateCheck_AllReasonsTogetherSortedAndUnique(t *testing.T) {
	f := policypacks.Finding{Policy: "image-pinned", URN: urnDep, Message: "image nginx:latest", Enforcement: "mandatory"}
	res := &outcome.Result{
		Summary:   map[string]int{"delete": 1, "replace": 1, "create": 3},
		Policy:    []policypacks.Finding{f, f},
		Resources: append(replacement(urnDep, tDep), outcome.ResourceChange{URN: urnCM, Type: tCM, Op: "delete"}, outcome.ResourceChange{URN: urnBucket, Type: tBucket, Op: "delete"}),
	}
	v := Gate{MaxChanges: 1, NoDeletes: true, NoReplaces: true, Protected: []string{tBucket}}.Check(res)
	require.False(t, v.Pass)
	assert.Equal(t, []string{
		"5 resources would change, more than the limit of 1",
		"delete of protected " + urnBucket,
		"delete of " + urnDep,
		"delete of " + urnCM,
		"policy image-pinned: image nginx:latest",
		"replacement of " + urnDep,
	}, v.Reasons)
}

// TestComparePlans_FindsChangedGoalsIgnoringCiphertexts: the reviewed plan
// and a fresh one are compared per resource; re-encryption is not a change.
func TestComparePlans_FindsChangedGoalsIgnoringCiphertexts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, image, cipher string) string {
		p := filepath.Join(dir, name)
		deps := []string{"urn:pulumi:dev::p::t::x", "urn:pulumi:dev::p::t::y"}
		if name == "b.json" {
			deps = []string{deps[1], deps[0]} // registered in another order
		}
		doc := map[string]any{"resourcePlans": map[string]any{
			"urn:a": map[string]any{"goal": map[string]any{"inputs": map[string]any{"image": image}, "dependencies": deps}, "steps": []string{"create"}, "seed": name},
			"urn:s": map[string]any{"goal": map[string]any{"inputs": map[string]any{"token": map[string]any{"ciphertext": cipher}}}, "steps": []string{"create"}},
		}}
		b, _ := json.Marshal(doc)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	a := write("a.json", "nginx:1.27", "v1:abc")
	same := write("b.json", "nginx:1.27", "v1:xyz")
	changed := write("c.json", "nginx:1.28", "v1:abc")
	diff, err := ComparePlans(a, same)
	require.NoError(t, err)
	assert.Empty(t, diff)
	diff, err = ComparePlans(a, changed)
	require.NoError(t, err)
	assert.Equal(t, []string{"urn:a"}, diff)
	err = &PlanChangedError{Stack: "dev", Resources: diff}
	assert.True(t, IsPlanChanged(err))
	assert.Contains(t, err.Error(), "nothing was applied")
}
