package dashboard

import (
	"context"
	"slices"

	"github.com/slipwayhq/slipway/automation/approvals"
)

type approvalsPage struct {
	Page  page
	Items []approvals.Request
}

// approvalsPage lists the pending approval requests, oldest first.
func (s *server) approvalsPage(ctx context.Context) (approvalsPage, error) {
	p := approvalsPage{Page: s.page("Approvals", "approvals")}
	reqs, err := approvals.New(s.o.Store).Pending(ctx)
	if err != nil {
		return p, err
	}
	for _, r := range reqs {
		if len(s.o.Projects) == 0 || slices.Contains(s.o.Projects, r.Project) {
			p.Items = append(p.Items, r)
		}
	}
	return p, nil
}
