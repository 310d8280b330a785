package aws_test

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/components/cluster"
	"github.com/slipwayhq/slipway/components/network"
	"github.com/slipwayhq/slipway/components/storage"
	"github.com/slipwayhq/slipway/integration/mocktest"
	p "github.com/slipwayhq/slipway/policypacks"
	"github.com/slipwayhq/slipway/policypacks/aws"
)

func res(typ, name string, props map[string]any) p.Resource {
	return p.Resource{URN: "urn:pulumi:s::p::" + typ + "::" + name, Type: typ, Name: name, Props: p.FromPlain(props)}
}

// to links r's input prop to target, as the engine records it.
func to(r p.Resource, prop string, target p.Resource) p.Resource {
	r.PropertyDependencies = map[string][]string{prop: {target.URN}}
	return r
}

var (
	bucket    = res(aws.Bucket, "b", map[string]any{"tags": map[string]any{"Name": "b"}})
	logBucket = res(aws.Bucket, "logs", map[string]any{"tags": map[string]any{"Name": "logs", aws.LogBucketTag: "access-logs"}})
	vpc       = res(aws.Vpc, "v", map[string]any{"tags": map[string]any{"Name": "v"}})
)

func sse(alg string) p.Resource {
	return to(res(aws.BucketSSE, "sse", map[string]any{"rules": []any{map[string]any{
		"applyServerSideEncryptionByDefault": map[string]any{"sseAlgorithm": alg}, "bucketKeyEnabled": true}}}), "bucket", bucket)
}

func pab(all bool) p.Resource {
	return to(res(aws.BucketPAB, "pab", map[string]any{"blockPublicAcls": true, "blockPublicPolicy": true, "ignorePublicAcls": true,
		"restrictPublicBuckets": all}), "bucket", bucket)
}

const tlsPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`

func sg(cidr string, port int) p.Resource {
	return res(aws.SecurityGroup, "sg", map[string]any{"tags": map[string]any{"Name": "sg"}, "ingress": []any{map[string]any{
		"protocol": "tcp", "fromPort": port, "toPort": port, "cidrBlocks": []any{cidr}}}})
}

func iam(doc string) p.Resource { return res(aws.IAMRolePolicy, "pol", map[string]any{"policy": doc}) }

func eks(private, public bool, cidrs []any, logs []any, secrets bool) p.Resource {
	enc := map[string]any{}
	if secrets {
		enc = map[string]any{"resources": []any{"secrets"}, "provider": map[string]any{"keyArn": "arn"}}
	}
	return res(aws.EKSCluster, "eks", map[string]any{"tags": map[string]any{"Name": "eks"},
		"vpcConfig":              map[string]any{"endpointPrivateAccess": private, "endpointPublicAccess": public, "publicAccessCidrs": cidrs},
		"enabledClusterLogTypes": logs, "encryptionConfig": enc})
}

var allLogs = []any{"api", "audit", "authenticator", "controllerManager", "scheduler"}

type fixture struct {
	policy     string
	env        string
	config     map[string]any
	pass, fail []p.Resource
}

var fixtures = []fixture{
	{policy: "s3-encryption-kms", pass: []p.Resource{bucket, sse("aws:kms")}, fail: []p.Resource{bucket, sse("AES256")}},
	{policy: "s3-encryption-kms", pass: []p.Resource{logBucket, to(sse("AES256"), "bucket", logBucket)}, fail: []p.Resource{bucket}},
	{policy: "s3-bucket-key", pass: []p.Resource{sse("aws:kms")},
		fail: []p.Resource{to(res(aws.BucketSSE, "sse", map[string]any{"rules": []any{map[string]any{
			"applyServerSideEncryptionByDefault": map[string]any{"sseAlgorithm": "aws:kms"}, "bucketKeyEnabled": false}}}), "bucket", bucket)}},
	{policy: "s3-public-access-block", pass: []p.Resource{bucket, pab(true)}, fail: []p.Resource{bucket, pab(false)}},
	{policy: "s3-deny-insecure-transport", pass: []p.Resource{bucket, to(res(aws.BucketPolicy, "pol", map[string]any{"policy": tlsPolicy}), "bucket", bucket)},
		fail: []p.Resource{bucket, to(res(aws.BucketPolicy, "pol", map[string]any{"policy": `{"Statement":[]}`}), "bucket", bucket)}},
	{policy: "s3-versioning", env: "prod",
		pass: []p.Resource{bucket, to(res(aws.BucketVersioning, "v", map[string]any{"versioningConfiguration": map[string]any{"status": "Enabled"}}), "bucket", bucket)},
		fail: []p.Resource{bucket, to(res(aws.BucketVersioning, "v", map[string]any{"versioningConfiguration": map[string]any{"status": "Suspended"}}), "bucket", bucket)}},
	{policy: "s3-versioning", env: "dev", pass: []p.Resource{bucket}, fail: nil},
	{policy: "s3-versioning", env: "dev", config: map[string]any{"environments": []any{"dev"}}, fail: []p.Resource{bucket}},
	{policy: "s3-access-logging", pass: []p.Resource{bucket, logBucket, to(res(aws.BucketLogging, "l", nil), "bucket", bucket)}, fail: []p.Resource{bucket}},
	{policy: "s3-ownership-enforced",
		pass: []p.Resource{bucket, to(res(aws.BucketOwnership, "o", map[string]any{"rule": map[string]any{"objectOwnership": "BucketOwnerEnforced"}}), "bucket", bucket)},
		fail: []p.Resource{bucket, to(res(aws.BucketOwnership, "o", map[string]any{"rule": map[string]any{"objectOwnership": "ObjectWriter"}}), "bucket", bucket)}},
	{policy: "s3-no-public-acl", pass: []p.Resource{res(aws.Bucket, "b", map[string]any{"acl": "private"})},
		fail: []p.Resource{res(aws.Bucket, "b", map[string]any{"acl": "public-read"})}},
	{policy: "vpc-flow-logs", pass: []p.Resource{vpc, to(res(aws.FlowLog, "fl", nil), "vpcId", vpc)}, fail: []p.Resource{vpc}},
	{policy: "default-sg-no-rules", pass: []p.Resource{vpc, to(res(aws.DefaultSG, "d", nil), "vpcId", vpc)},
		fail: []p.Resource{vpc, to(res(aws.DefaultSG, "d", map[string]any{"ingress": []any{map[string]any{"protocol": "-1"}}}), "vpcId", vpc)}},
	{policy: "default-sg-no-rules", fail: []p.Resource{vpc}},
	{policy: "no-public-admin-ports", pass: []p.Resource{sg("10.0.0.0/8", 22), sg("0.0.0.0/0", 443)}, fail: []p.Resource{sg("0.0.0.0/0", 22)}},
	{policy: "no-public-admin-ports", fail: []p.Resource{sg("0.0.0.0/0", 3389)}},
	{policy: "no-public-admin-ports", config: map[string]any{"ports": []any{float64(5432)}}, pass: []p.Resource{sg("0.0.0.0/0", 22)},
		fail: []p.Resource{res(aws.SGRule, "r", map[string]any{"type": "ingress", "protocol": "tcp", "fromPort": 5000, "toPort": 6000, "cidrBlocks": []any{"0.0.0.0/0"}})}},
	{policy: "subnet-no-auto-public-ip", pass: []p.Resource{res(aws.Subnet, "s", map[string]any{"mapPublicIpOnLaunch": false})},
		fail: []p.Resource{res(aws.Subnet, "s", map[string]any{"mapPublicIpOnLaunch": true})}},
	{policy: "ebs-encrypted", pass: []p.Resource{res(aws.EBSVolume, "v", map[string]any{"encrypted": true, "kmsKeyId": "k"})},
		fail: []p.Resource{res(aws.EBSVolume, "v", map[string]any{"encrypted": false})}},
	{policy: "ebs-encrypted", fail: []p.Resource{res(aws.EBSVolume, "v", map[string]any{"encrypted": true})}},
	{policy: "launch-template-ebs-encrypted",
		pass: []p.Resource{res(aws.LaunchTemplate, "lt", map[string]any{"blockDeviceMappings": []any{map[string]any{"ebs": map[string]any{"encrypted": "true"}}}})},
		fail: []p.Resource{res(aws.LaunchTemplate, "lt", map[string]any{"blockDeviceMappings": []any{map[string]any{"ebs": map[string]any{"encrypted": "false"}}}})}},
	{policy: "efs-encrypted", pass: []p.Resource{res(aws.EFS, "f", map[string]any{"encrypted": true})}, fail: []p.Resource{res(aws.EFS, "f", nil)}},
	{policy: "rds-encrypted", pass: []p.Resource{res(aws.RDSInstance, "db", map[string]any{"storageEncrypted": true})},
		fail: []p.Resource{res(aws.RDSCluster, "db", map[string]any{"storageEncrypted": false})}},
	{policy: "rds-not-public", pass: []p.Resource{res(aws.RDSInstance, "db", map[string]any{"publiclyAccessible": false})},
		fail: []p.Resource{res(aws.RDSInstance, "db", map[string]any{"publiclyAccessible": true})}},
	{policy: "eks-private-endpoint", pass: []p.Resource{eks(true, false, nil, allLogs, true), eks(true, true, []any{"203.0.113.0/24"}, allLogs, true)},
		fail: []p.Resource{eks(true, true, []any{"0.0.0.0/0"}, allLogs, true)}},
	{policy: "eks-private-endpoint", fail: []p.Resource{eks(false, false, nil, allLogs, true)}},
	{policy: "eks-control-plane-logs", pass: []p.Resource{eks(true, false, nil, allLogs, true)}, fail: []p.Resource{eks(true, false, nil, []any{"api"}, true)}},
	{policy: "eks-secrets-encryption", pass: []p.Resource{eks(true, false, nil, allLogs, true)}, fail: []p.Resource{eks(true, false, nil, allLogs, false)}},
	{policy: "iam-no-admin", pass: []p.Resource{iam(`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)},
		fail: []p.Resource{iam(`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`)}},
	{policy: "iam-no-passrole-wildcard", pass: []p.Resource{iam(`{"Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::1:role/x"}]}`)},
		fail: []p.Resource{iam(`{"Statement":[{"Effect":"Allow","Action":["iam:PassRole"],"Resource":["*"]}]}`)}},
	{policy: "kms-key-rotation", pass: []p.Resource{res(aws.KMSKey, "k", map[string]any{"enableKeyRotation": true}),
		res(aws.KMSKey, "asym", map[string]any{"customerMasterKeySpec": "RSA_2048"})},
		fail: []p.Resource{res(aws.KMSKey, "k", map[string]any{"enableKeyRotation": false})}},
	{policy: "log-retention", pass: []p.Resource{res(aws.LogGroup, "l", map[string]any{"retentionInDays": 365})},
		fail: []p.Resource{res(aws.LogGroup, "l", map[string]any{"retentionInDays": 7}), res(aws.LogGroup, "never", nil)}},
	{policy: "log-retention", config: map[string]any{"minDays": float64(7)}, pass: []p.Resource{res(aws.LogGroup, "l", map[string]any{"retentionInDays": 7})}},
	{policy: "required-tags", pass: []p.Resource{vpc}, fail: []p.Resource{res(aws.Vpc, "v", map[string]any{"tags": map[string]any{}})}},
	{policy: "required-tags", config: map[string]any{"tags": []any{"Name", "team"}}, fail: []p.Resource{vpc},
		pass: []p.Resource{res(aws.Vpc, "v", map[string]any{"tags": map[string]any{"Name": "v", "team": "x"}})}},
	{policy: "imdsv2-required", pass: []p.Resource{res(aws.Instance, "i", map[string]any{"metadataOptions": map[string]any{"httpTokens": "required"}})},
		fail: []p.Resource{res(aws.LaunchTemplate, "lt", map[string]any{"metadataOptions": map[string]any{"httpTokens": "optional"}})}},
	{policy: "instance-no-public-ip", pass: []p.Resource{res(aws.Instance, "i", nil)},
		fail: []p.Resource{res(aws.Instance, "i", map[string]any{"associatePublicIpAddress": true})}},
}

func only(policy, env string, config map[string]any) p.Settings {
	s := p.Settings{Kind: env, Overrides: map[string]p.Override{}}
	for _, pol := range aws.Pack().Policies {
		if pol.Name != policy {
			s.Overrides[pol.Name] = p.Override{Enforcement: p.Disabled}
		}
	}
	s.Overrides[policy] = p.Override{Config: config}
	return s
}

func TestPack_IsWellFormedWithAtLeast25Rules(t *testing.T) {
	pack := aws.Pack()
	require.NoError(t, pack.Validate())
	assert.GreaterOrEqual(t, len(pack.Policies), 25)
	for _, pol := range pack.Policies {
		assert.NotEmpty(t, pol.Controls, "%s maps to controls", pol.Name)
	}
}

func TestPack_EveryRuleHasPassingAndFailingFixtures(t *testing.T) {
	pass, fail := map[string]bool{}, map[string]bool{}
	for _, f := range fixtures {
		t.Run(f.policy, func(t *testing.T) {
			s := only(f.policy, f.env, f.config)
			if f.pass != nil {
				rep := p.Evaluate(f.pass, s, aws.Pack())
				assert.Empty(t, rep.Violations(), "passing fixture")
				pass[f.policy] = true
			}
			if f.fail != nil {
				rep := p.Evaluate(f.fail, s, aws.Pack())
				assert.NotEmpty(t, rep.Violations(), "failing fixture")
				for _, r := range rep.Results {
					assert.Equal(t, f.policy, r.Policy)
					assert.NotEmpty(t, r.Message)
				}
				fail[f.policy] = true
			}
		})
	}
	for _, pol := range aws.Pack().Policies {
		assert.True(t, pass[pol.Name], "%s needs a passing fixture", pol.Name)
		assert.True(t, fail[pol.Name], "%s needs a failing fixture", pol.Name)
	}
}

func TestPack_UnknownValuesAreReportedNotPassed(t *testing.T) {
	vol := res(aws.EBSVolume, "v", map[string]any{"tags": map[string]any{"Name": "v"}})
	vol.Props["encrypted"] = p.Unknown
	rep := p.Evaluate([]p.Resource{vol}, p.Settings{Kind: "prod"}, aws.Pack())
	require.NotEmpty(t, rep.Results)
	var found bool
	for _, r := range rep.Results {
		if r.Policy == "ebs-encrypted" {
			found = true
			assert.True(t, r.Unverified)
			assert.Contains(t, r.Message, "not known until update")
		}
	}
	assert.True(t, found, "an unknown value must be reported")
	assert.True(t, rep.Passed(), "unverified checks do not block")
}

// TestComponents_SecureDefaultsPassThePack runs the AWS components' mocked
// graphs through the pack: no violation, nothing unverified.
func TestComponents_SecureDefaultsPassThePack(t *testing.T) {
	g, err := mocktest.Run(func(ctx *pulumi.Context) error {
		n, err := network.New(ctx, "vpc", network.Args{NAT: network.NATPerAZ})
		if err != nil {
			return err
		}
		if _, err := cluster.New(ctx, "eks", cluster.Args{Name: "prod", VpcID: n.VpcID, SubnetIDs: n.PrivateSubnetIDs}); err != nil {
			return err
		}
		if _, err := storage.NewBucket(ctx, "data", storage.BucketArgs{Production: true}); err != nil {
			return err
		}
		if _, err := storage.NewVolume(ctx, "disk", storage.VolumeArgs{AvailabilityZone: "us-east-1a"}); err != nil {
			return err
		}
		_, err = storage.NewFileSystem(ctx, "fs", storage.FileSystemArgs{VpcID: n.VpcID, VpcCIDR: n.CIDR,
			SubnetIDs: []pulumi.StringInput{pulumi.String("s-1")}})
		return err
	}, nil)
	require.NoError(t, err)
	rep := p.Evaluate(g.PolicyResources(), p.Settings{Kind: "prod"}, aws.Pack())
	assert.Empty(t, rep.Results, "%+v", rep.Results)
	assert.Greater(t, rep.Resources, 50)

	// And a deliberately weakened program fails.
	g, err = mocktest.Run(func(ctx *pulumi.Context) error {
		_, err := network.New(ctx, "vpc", network.Args{DisableFlowLogs: true, FlowLogRetentionDays: 7})
		return err
	}, nil)
	require.NoError(t, err)
	rep = p.Evaluate(g.PolicyResources(), p.Settings{Kind: "prod"}, aws.Pack())
	require.Len(t, rep.Blocking(), 1)
	assert.Equal(t, "vpc-flow-logs", rep.Blocking()[0].Policy)
}
