package policypacks_test

import (
	"fmt"

	"github.com/slipwayhq/slipway/policypacks"
)

// A pack of one rule with configuration, evaluated in-process over three
// resources as a preview shows them: one compliant, one not, one whose value
// is not known yet (it is reported as unverified, never as a pass). The same
// pack blocks inside the engine: register it with cli.PolicyPacks, or serve
// it with policypacks.ServeIfAnalyzer and Engine.PolicyDir.
func Example() {
	pack := &policypacks.Pack{Name: "team", Version: "1.0.0", Policies: []*policypacks.Policy{{
		Name: "max-replicas", Description: "Deployments stay within the team's replica budget",
		Severity: policypacks.Medium, Enforcement: policypacks.Mandatory,
		Types:  []string{"kubernetes:apps/v1:Deployment"},
		Config: policypacks.Config{"max": 5},
		Validate: func(r policypacks.Resource, a *policypacks.Args) {
			n, st := r.Props.Number("spec.replicas")
			a.Check(r, st, int(n) <= a.Config.Int("max"), "the replicas of %s exceed the budget of %d", r.Name, a.Config.Int("max"))
		},
	}}}
	deployment := func(name string, replicas any) policypacks.Resource {
		return policypacks.Resource{URN: "urn:pulumi:prod::shop::kubernetes:apps/v1:Deployment::" + name,
			Type: "kubernetes:apps/v1:Deployment", Name: name, Props: policypacks.Props{"spec": map[string]any{"replicas": replicas}}}
	}
	resources := []policypacks.Resource{deployment("web", 3.0), deployment("batch", 12.0), deployment("scaled", policypacks.Unknown)}

	for _, env := range []string{"prod", "dev"} {
		rep := policypacks.Evaluate(resources, policypacks.Settings{Kind: env}, pack)
		for _, f := range rep.Results {
			fmt.Printf("%s: %s %s unverified=%v: %s\n", env, f.Policy, f.Enforcement, f.Unverified, f.Message)
		}
		fmt.Printf("%s: passed=%v\n", env, rep.Passed())
	}

	// Configuration per environment: a larger budget passes batch.
	raised := policypacks.Settings{Kind: "prod", Overrides: map[string]policypacks.Override{"max-replicas": {Config: map[string]any{"max": 20}}}}
	fmt.Println("raised:", policypacks.Evaluate(resources, raised, pack).Passed())
	// Output:
	// prod: max-replicas mandatory unverified=false: the replicas of batch exceed the budget of 5
	// prod: max-replicas mandatory unverified=true: the replicas of scaled exceed the budget of 5 (the value is not known until update)
	// prod: passed=false
	// dev: max-replicas advisory unverified=false: the replicas of batch exceed the budget of 5
	// dev: max-replicas advisory unverified=true: the replicas of scaled exceed the budget of 5 (the value is not known until update)
	// dev: passed=true
	// raised: true
}
