package chatops

import (
	"net/url"
	"strings"
)

// CIRunURL returns the URL of the CI run the process is part of, from the
// standard variables of GitHub Actions, GitLab CI, Buildkite, CircleCI,
// Azure Pipelines and Jenkins, or "" outside CI. getenv is os.Getenv in
// production.
func CIRunURL(getenv func(string) string) string {
	if getenv == nil {
		return ""
	}
	if s, r, id := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID"); s != "" && r != "" && id != "" {
		u := strings.TrimRight(s, "/") + "/" + r + "/actions/runs/" + id
		if a := getenv("GITHUB_RUN_ATTEMPT"); a != "" && a != "1" {
			u += "/attempts/" + a
		}
		return u
	}
	for _, k := range []string{"CI_JOB_URL", "CI_PIPELINE_URL", "BUILDKITE_BUILD_URL", "CIRCLE_BUILD_URL"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	if s, p, id := getenv("SYSTEM_TEAMFOUNDATIONSERVERURI"), getenv("SYSTEM_TEAMPROJECT"), getenv("BUILD_BUILDID"); s != "" && p != "" && id != "" {
		return strings.TrimRight(s, "/") + "/" + url.PathEscape(p) + "/_build/results?buildId=" + id
	}
	return getenv("BUILD_URL") // Jenkins
}

// CIActor returns who started the CI run the process is part of (GitHub
// Actions, GitLab CI, Buildkite, CircleCI, Azure Pipelines), or "" outside
// CI. getenv is os.Getenv in production.
func CIActor(getenv func(string) string) string {
	if getenv == nil {
		return ""
	}
	for _, k := range []string{"GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR_EMAIL",
		"CIRCLE_USERNAME", "BUILD_REQUESTEDFOREMAIL"} {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
	}
	return ""
}
