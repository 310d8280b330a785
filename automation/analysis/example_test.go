package analysis_test

import (
	"context"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/automation/analysis"
)

// A Metric measured with a Go function: three measurements, one
// failure tolerated. In a canary, the Provider would be
// analysis.Prometheus{Address: …, Query: …} and the Interval 30s or more.
func Example() {
	rates := []float64{0.01, 0.09, 0.02} // the canary's error rate, one per measurement
	next := 0
	success, err := analysis.ParseCondition("result < 0.05")
	if err != nil {
		panic(err)
	}
	r, err := analysis.Run(context.Background(), analysis.Metric{
		Name: "error-rate",
		Provider: analysis.Func(func(context.Context) (float64, error) {
			v := rates[next]
			next++
			return v, nil
		}),
		Interval:         10 * time.Millisecond,
		Count:            3,
		SuccessCondition: success,
		FailureLimit:     1,
	})
	if err != nil {
		panic(err)
	}
	for _, m := range r.Measurements {
		fmt.Println(*m.Value, m.Phase)
	}
	fmt.Println(r.Phase)
	// Output:
	// 0.01 Successful
	// 0.09 Failed
	// 0.02 Successful
	// Successful
}
