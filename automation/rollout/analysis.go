package rollout

import (
	"context"

	"github.com/slipwayhq/slipway/automation/analysis"
)

// AnalysisGate is a gate that runs metric m (package analysis): a
// Successful run passes, an Inconclusive one pauses the rollout, a Failed
// or Error one fails it. Every measurement (the analysis.Result) is the
// check's detail, kept in the rollout's record.
func AnalysisGate(m analysis.Metric, opts ...analysis.Option) Gate {
	return GateFunc{GateName: m.Name, CheckFunc: func(ctx context.Context) (Verdict, any, error) {
		res, err := analysis.Run(ctx, m, opts...)
		if err != nil {
			return Failed, res, err
		}
		switch res.Phase {
		case analysis.PhaseSuccessful:
			return Successful, res, nil
		case analysis.PhaseInconclusive:
			return Inconclusive, res, nil
		}
		return Failed, res, nil
	}}
}
