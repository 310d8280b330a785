package input

import (
	"crypto/ed25519"
	"errors"
	"os"
	"os/user"
	"regexp"
	"strings"

	"github.com/spf13/pflag"

	"github.com/slipwayhq/slipway/automation/approvals"
	"github.com/slipwayhq/slipway/automation/chatops"
	"github.com/slipwayhq/slipway/cmd/slipway/cli/internal/app"
)

// Environment variables naming the approval key files (paths, never keys).
const (
	envApprovalKeyFile       = "SLIPWAY_APPROVAL_KEY_FILE"
	EnvApprovalPublicKeyFile = "SLIPWAY_APPROVAL_PUBLIC_KEY_FILE"
	EnvRequestedBy           = "SLIPWAY_REQUESTED_BY"
	envLegacyServeToken      = "SLIPWAY_SERVE_TOKEN"
)

// ApprovalFlags are the flags of serve that say who may decide and how
// decisions are signed.
type ApprovalFlags struct {
	keyFile, tokenFile    string
	apiTokens             []string
	slackTeam, slackGroup string
	slackBotFile          string
	slackApprovers        []string
	allowSelf             bool
}

// Register adds the approval flags to fl.
func (f *ApprovalFlags) Register(fl *pflag.FlagSet) {
	fl.StringVar(&f.keyFile, "approval-key-file", "", "PEM Ed25519 private key decisions are signed with; required to accept decisions (default $"+envApprovalKeyFile+"; create: openssl genpkey -algorithm ed25519 -out approval-key.pem)")
	fl.StringArrayVar(&f.apiTokens, "api-token", nil, "a named bearer token of the approvals API, NAME=@PATH (repeatable); decisions made with it are recorded under NAME")
	fl.StringVar(&f.slackTeam, "slack-team-id", "", "the Slack workspace (team_id, T…) whose callbacks are accepted; required with a Slack signing secret")
	fl.StringSliceVar(&f.slackApprovers, "slack-approvers", nil, "Slack user IDs (U…) allowed to approve from Slack")
	fl.StringVar(&f.slackGroup, "slack-approver-group", "", "a Slack user group (S…) whose members may approve; needs --slack-bot-token-file")
	fl.StringVar(&f.slackBotFile, "slack-bot-token-file", "", "file holding a Slack bot token with usergroups:read, to read --slack-approver-group")
	fl.BoolVar(&f.allowSelf, "allow-self-approval", false, "let whoever requested a promotion approve it (default: someone else must)")
	fl.StringVar(&f.tokenFile, "token-file", "", "replaced by --api-token NAME=@PATH")
	_ = fl.MarkHidden("token-file")
}

var (
	slackTeamRE  = regexp.MustCompile(`^[TE][A-Z0-9]{2,}$`)
	slackUserRE  = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	slackGroupRE = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
)

// servedApprovals is what serve needs to record decisions.
type servedApprovals struct {
	Key    ed25519.PrivateKey
	Tokens *approvals.Tokens
	// slack is nil without a Slack signing secret.
	Slack    []approvals.HandlerOption
	Api      []approvals.HandlerOption
	Secrets  [][]byte
	deciding bool
}

// Build checks the approval flags (slack is the Slack signing secret, or
// empty) and reads the key and the tokens. Every way to decide needs the
// signing key; Slack needs its workspace and approvers.
func (f ApprovalFlags) Build(slack []byte) (servedApprovals, error) {
	var out servedApprovals
	if f.tokenFile != "" || os.Getenv(envLegacyServeToken) != "" {
		return out, app.BadInput("--token-file and %s held one token every caller shared; give each caller a named token with --api-token NAME=@PATH (decisions are recorded under NAME), and unset %s",
			envLegacyServeToken, envLegacyServeToken)
	}
	var ts []approvals.Token
	for _, spec := range f.apiTokens {
		name, file, ok := strings.Cut(spec, "=")
		path, isFile := strings.CutPrefix(file, "@")
		if !ok || !isFile || path == "" {
			return out, app.BadInput("--api-token %q is not NAME=@PATH; put the token in a file (a token on the command line shows in ps) and give e.g. --api-token alice=@/run/secrets/alice", redactSpec(spec))
		}
		secret, err := ServeSecret("--api-token "+name, path, "")
		if err != nil {
			return out, err
		}
		ts = append(ts, approvals.Token{Name: name, Secret: secret})
		out.Secrets = append(out.Secrets, secret)
	}
	tokens, err := approvals.NewTokens(ts...)
	if err != nil {
		return out, app.BadInput("--api-token: %s", strings.TrimPrefix(err.Error(), "approvals: "))
	}
	out.Tokens = tokens
	out.Api = []approvals.HandlerOption{approvals.AllowSelfApproval(f.allowSelf)}

	slackFlags := f.slackTeam != "" || len(f.slackApprovers) > 0 || f.slackGroup != "" || f.slackBotFile != ""
	switch {
	case len(slack) == 0 && slackFlags:
		return out, app.BadInput("--slack-team-id, --slack-approvers and --slack-approver-group need the Slack app's signing secret (--slack-signing-secret-file or SLACK_SIGNING_SECRET)")
	case len(slack) > 0:
		if !slackTeamRE.MatchString(f.slackTeam) {
			return out, app.BadInput("--slack-team-id %q: with a Slack signing secret, name the workspace whose callbacks count, its team_id (T…)", f.slackTeam)
		}
		if len(f.slackApprovers) == 0 && f.slackGroup == "" {
			return out, app.BadInput("a Slack signing secret needs --slack-approvers U…,U… or --slack-approver-group S…: otherwise anyone in the workspace could approve")
		}
		opts := []approvals.HandlerOption{approvals.SlackTeam(f.slackTeam), approvals.AllowSelfApproval(f.allowSelf)}
		for _, u := range f.slackApprovers {
			if u = strings.TrimSpace(u); !slackUserRE.MatchString(u) {
				return out, app.BadInput("--slack-approvers %q is not a Slack user ID (U… or W…, from the user's profile: Copy member ID)", u)
			}
		}
		opts = append(opts, approvals.SlackApprovers(f.slackApprovers...))
		if f.slackGroup != "" {
			if !slackGroupRE.MatchString(f.slackGroup) {
				return out, app.BadInput("--slack-approver-group %q is not a Slack user group ID (S…)", f.slackGroup)
			}
			if f.slackBotFile == "" {
				return out, app.BadInput("--slack-approver-group needs --slack-bot-token-file (a bot token with usergroups:read) to read the group's members")
			}
			bot, err := ServeSecret("--slack-bot-token-file", f.slackBotFile, "")
			if err != nil {
				return out, err
			}
			out.Secrets = append(out.Secrets, bot)
			opts = append(opts, approvals.SlackApproverGroup(approvals.SlackUserGroup(approvals.SlackAPI, f.slackGroup, bot, nil)))
		} else if f.slackBotFile != "" {
			return out, app.BadInput("--slack-bot-token-file is only used with --slack-approver-group")
		}
		out.Slack = opts
	}

	out.deciding = tokens.Len() > 0 || len(slack) > 0
	keyFile := f.keyFile
	if keyFile == "" {
		keyFile = os.Getenv(envApprovalKeyFile)
	}
	if keyFile == "" {
		if out.deciding {
			return out, app.BadInput("--approval-key-file is required to accept decisions (--api-token, --slack-signing-secret-file): each decision is signed with it and promotions verify it with its public key; create it with: openssl genpkey -algorithm ed25519 -out approval-key.pem")
		}
		return out, nil
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return out, app.BadInput("--approval-key-file %q is not a readable file: %v", keyFile, errors.Unwrap(err))
	}
	out.Key, err = approvals.ParsePrivateKey(b)
	if err != nil {
		return out, app.BadInput("--approval-key-file %q: %v", keyFile, err)
	}
	return out, nil
}

// redactSpec drops what follows NAME= of an --api-token value that is
// not a file reference: it may be the token itself.
func redactSpec(spec string) string {
	name, rest, ok := strings.Cut(spec, "=")
	if !ok {
		return "…"
	}
	if strings.HasPrefix(rest, "@") {
		return spec
	}
	return name + "=…"
}

// ApprovalPublicKey reads the key a waiting promotion verifies decisions
// with (--approval-public-key-file, else $SLIPWAY_APPROVAL_PUBLIC_KEY_FILE).
func ApprovalPublicKey(file string) (ed25519.PublicKey, error) {
	if file == "" {
		file = os.Getenv(EnvApprovalPublicKeyFile)
	}
	if file == "" {
		return nil, app.BadInput("--approval-wait needs --approval-public-key-file (or %s): the public key of slipway serve's --approval-key-file, to tell its decisions from forged ones; derive it with: openssl pkey -in approval-key.pem -pubout -out approval-key.pub",
			EnvApprovalPublicKeyFile)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, app.BadInput("--approval-public-key-file %q is not a readable file: %v", file, errors.Unwrap(err))
	}
	k, err := approvals.ParsePublicKey(b)
	if err != nil {
		return nil, app.BadInput("--approval-public-key-file %q: %v", file, err)
	}
	return k, nil
}

// Requesters names who starts a promotion: the --requested-by values,
// $SLIPWAY_REQUESTED_BY (comma-separated, e.g. the requester's Slack user
// ID), the CI actor and the OS user.
func Requesters(flag []string, getenv func(string) string) []string {
	var out []string
	add := func(v string) {
		if v = strings.TrimSpace(v); v != "" && !containsFold(out, v) {
			out = append(out, v)
		}
	}
	for _, v := range flag {
		add(v)
	}
	for _, v := range strings.Split(getenv(EnvRequestedBy), ",") {
		add(v)
	}
	add(chatops.CIActor(getenv))
	if u, err := user.Current(); err == nil {
		add(u.Username)
	}
	return out
}

func containsFold(list []string, v string) bool {
	for _, s := range list {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}
