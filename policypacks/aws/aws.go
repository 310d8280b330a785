// Package aws is Slipway's AWS policy pack: storage encryption and exposure,
// network hygiene, EKS hardening, IAM least privilege, key rotation, logging
// and tagging. Every policy maps to CIS AWS Foundations, PCI-DSS v4 and HIPAA
// controls.
package aws

import (
	"fmt"
	"slices"
	"strings"

	p "github.com/slipwayhq/slipway/policypacks"
)

// Resource type tokens the pack judges.
const (
	Bucket           = "aws:s3/bucketV2:BucketV2"
	BucketLegacy     = "aws:s3/bucket:Bucket"
	BucketSSE        = "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
	BucketPAB        = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
	BucketPolicy     = "aws:s3/bucketPolicy:BucketPolicy"
	BucketVersioning = "aws:s3/bucketVersioningV2:BucketVersioningV2"
	BucketLogging    = "aws:s3/bucketLoggingV2:BucketLoggingV2"
	BucketOwnership  = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
	BucketACL        = "aws:s3/bucketAclV2:BucketAclV2"
	Vpc              = "aws:ec2/vpc:Vpc"
	FlowLog          = "aws:ec2/flowLog:FlowLog"
	DefaultSG        = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
	SecurityGroup    = "aws:ec2/securityGroup:SecurityGroup"
	SGRule           = "aws:ec2/securityGroupRule:SecurityGroupRule"
	SGIngressRule    = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
	Subnet           = "aws:ec2/subnet:Subnet"
	Instance         = "aws:ec2/instance:Instance"
	LaunchTemplate   = "aws:ec2/launchTemplate:LaunchTemplate"
	EBSVolume        = "aws:ebs/volume:Volume"
	EFS              = "aws:efs/fileSystem:FileSystem"
	RDSInstance      = "aws:rds/instance:Instance"
	RDSCluster       = "aws:rds/cluster:Cluster"
	EKSCluster       = "aws:eks/cluster:Cluster"
	IAMPolicy        = "aws:iam/policy:Policy"
	IAMRolePolicy    = "aws:iam/rolePolicy:RolePolicy"
	IAMUserPolicy    = "aws:iam/userPolicy:UserPolicy"
	IAMGroupPolicy   = "aws:iam/groupPolicy:GroupPolicy"
	KMSKey           = "aws:kms/key:Key"
	LogGroup         = "aws:cloudwatch/logGroup:LogGroup"
)

// LogBucketTag marks buckets that receive S3 server access logs; S3 can only
// deliver those to SSE-S3 buckets, so such buckets may use AES256 and need no
// access logging of their own.
const LogBucketTag = "slipway:purpose"

func ctl(pairs ...string) []p.Control {
	out := make([]p.Control, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, p.Control{Framework: pairs[i], ID: pairs[i+1]})
	}
	return out
}

func isLogBucket(r p.Resource) bool {
	v, _ := r.Props.String("tags." + LogBucketTag)
	return v == "access-logs"
}

// buckets are every bucket of the stack.
func buckets(rs []p.Resource) []p.Resource {
	return append(p.OfType(rs, Bucket), p.OfType(rs, BucketLegacy)...)
}

// everyBucketHas reports buckets without a companion resource of typ linked by its "bucket" input.
func everyBucketHas(typ string, skip func(p.Resource) bool, what string) func([]p.Resource, *p.Args) {
	return func(rs []p.Resource, a *p.Args) {
		for _, b := range buckets(rs) {
			if skip != nil && skip(b) {
				continue
			}
			if len(p.Linked(rs, typ, "bucket", b.URN)) == 0 {
				a.Report(b.URN, "bucket %s has no %s", b.Name, what)
			}
		}
	}
}

// Pack returns the AWS policy pack.
func Pack() *p.Pack {
	return &p.Pack{Name: "slipway-aws", Version: "0.1.0", Policies: []*p.Policy{
		{
			Name: "s3-encryption-kms", Description: "S3 buckets are encrypted with SSE-KMS (log buckets may use SSE-S3)",
			Severity: p.High, Enforcement: p.Mandatory,
			Controls: ctl(p.CIS, "2.1.1", p.PCI, "3.5.1", p.HIPAA, "164.312(a)(2)(iv)"),
			ValidateStack: func(rs []p.Resource, a *p.Args) {
				for _, b := range buckets(rs) {
					cfgs := p.Linked(rs, BucketSSE, "bucket", b.URN)
					if len(cfgs) == 0 {
						a.Report(b.URN, "bucket %s has no server-side encryption configuration", b.Name)
						continue
					}
					alg, st := cfgs[0].Props.String("rules.0.applyServerSideEncryptionByDefault.sseAlgorithm")
					ok := strings.HasPrefix(alg, "aws:kms") || (alg == "AES256" && isLogBucket(b))
					a.Check(b, st, ok, "bucket %s is encrypted with %q; use aws:kms with a customer-managed key", b.Name, alg)
				}
			},
		},
		{
			Name: "s3-bucket-key", Description: "SSE-KMS buckets enable the S3 bucket key (fewer KMS calls, same protection)",
			Severity: p.Low, Enforcement: p.Advisory, Types: []string{BucketSSE},
			Controls: ctl(p.CIS, "2.1.1"),
			Validate: func(r p.Resource, a *p.Args) {
				alg, _ := r.Props.String("rules.0.applyServerSideEncryptionByDefault.sseAlgorithm")
				if !strings.HasPrefix(alg, "aws:kms") {
					return
				}
				on, st := r.Props.Bool("rules.0.bucketKeyEnabled")
				a.Check(r, st, on, "bucketKeyEnabled is off")
			},
		},
		{
			Name: "s3-public-access-block", Description: "Every S3 bucket blocks public access with all four flags",
			Severity: p.Critical, Enforcement: p.Mandatory,
			Controls: ctl(p.CIS, "2.1.4", p.PCI, "1.4.1", p.HIPAA, "164.312(e)(1)"),
			ValidateStack: func(rs []p.Resource, a *p.Args) {
				for _, b := range buckets(rs) {
					pabs := p.Linked(rs, BucketPAB, "bucket", b.URN)
					if len(pabs) == 0 {
						a.Report(b.URN, "bucket %s has no public access block", b.Name)
						continue
					}
					for _, f := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
						on, st := pabs[0].Props.Bool(f)
						a.Check(b, st, on, "bucket %s: public access block %s is not true", b.Name, f)
					}
				}
			},
		},
		{
			Name: "s3-deny-insecure-transport", Description: "S3 bucket policies deny requests without TLS",
			Severity: p.High, Enforcement: p.Mandatory,
			Controls: ctl(p.CIS, "2.1.2", p.PCI, "4.2.1", p.HIPAA, "164.312(e)(1)"),
			ValidateStack: func(rs []p.Resource, a *p.Args) {
				for _, b := range buckets(rs) {
					pols := p.Linked(rs, BucketPolicy, "bucket", b.URN)
					found, unknown := false, false
					for _, pol := range pols {
						v, st := pol.Props.Get("policy")
						if st == p.Unknowable {
							unknown = true
							continue
						}
						stmts, _ := p.PolicyDocument(v)
						for _, s := range stmts {
							cond, _ := s["Condition"].(map[string]any)
							boolCond, _ := cond["Bool"].(map[string]any)
							if s["Effect"] == "Deny" && fmt.Sprint(boolCond["aws:SecureTransport"]) == "false" {
								found = true
							}
						}
					}
					st := p.Known
					if unknown && !found {
						st = p.Unknowable
					}
					a.Check(b, st, found, "bucket %s has no policy denying aws:SecureTransport=false", b.Name)
				}
			},
		},
		{
			Name: "s3-versioning", Description: "S3 buckets keep versions (required in the environments listed in config)",
			Severity: p.Medium, Enforcement: p.Mandatory,
			Controls:     ctl(p.CIS, "2.1.3", p.PCI, "10.5.1", p.HIPAA, "164.312(c)(1)"),
			Config:       p.Config{"environments": []any{"staging", "prod"}},
			ConfigSchema: map[string]map[string]any{"environments": {"type": "array", "items": map[string]any{"type": "string"}}},
			ValidateStack: func(rs []p.Resource, a *p.Args) {
				if envs := a.Config.Strings("environments"); a.Kind != "" && !slices.Contains(envs, a.Kind) {
					return
				}
				for _, b := range buckets(rs) {
					if isLogBucket(b) {
						continue
					}
					vs := p.Linked(rs, BucketVersioning, "bucket", b.URN)
					if len(vs) == 0 {
						a.Report(b.URN, "bucket %s has no versioning configuration", b.Name)
						continue
					}
					s, st := vs[0].Props.String("versioningConfiguration.status")
					a.Check(b, st, s == "Enabled", "bucket %s versioning is %q; enable it", b.Name, s)
				}
			},
		},
		{
			Name: "s3-access-logging", Description: "S3 buckets log server access (except the log buckets themselves)",
			Severity: p.Medium, Enforcement: p.Mandatory,
			Controls:      ctl(p.CIS, "3.6", p.PCI, "10.2.1", p.HIPAA, "164.312(b)"),
			ValidateStack: everyBucketHas(BucketLogging, isLogBucket, "server access logging"),
		},
		{
			Name: "s3-ownership-enforced", Description: "S3 buckets disable ACLs (BucketOwnerEnforced)",
			Severity: p.Medium, Enforcement: p.Mandatory,
			Controls: ctl(p.CIS, "2.1.4", p.PCI, "7.2.1"),
			ValidateStack: func(rs []p.Resource, a *p.Args) {
				for _, b := range buckets(rs) {
					oc := p.Linked(rs, BucketOwnership, "bucket", b.URN)
					if len(oc) == 0 {
						a.Report(b.URN, "bucket %s has no ownership controls", b.Name)
						continue
					}
					o, st := oc[0].Props.String("rule.objectOwnership")
					a.Check(b, st, o == "BucketOwnerEnforced", "bucket %s object ownership is %q; use BucketOwnerEnforced", b.Name, o)
				}
			},
		},
		{
			Name: "s3-no-public-acl", Description: "S3 buckets and bucket ACLs grant nothing to the public",
			Severity: p.Critical, Enforcement: p.Mandatory, Types: []string{Bucket, BucketLegacy, BucketACL},
			Controls: ctl(p.CIS, "2.1.4", p.PCI, "1.4.1", p.HIPAA, "164.312(a)(1)"),
			Validate: func(r p.Resource, a *p.Args) {
				acl, st := r.Props.String("acl")
				a.Check(r, st, !slices.Contains([]string{"public-read", "public-read-write", "authenticated-read"}, acl),
					"canned ACL %q exposes the bucket", acl)
			},
		},
		{
			Name: "vpc-flow-logs", Description: "Every VPC records flow logs",
			Severity: p.Medium, Enforcement: p.Mandatory,
			Controls: ctl(p.CIS, "3.7", p.PCI, "10.2.1", p.HIPAA, "164.312(b)"),
			ValidateStack: func(rs []p.Resource, a *p.Args) {
				for _, v := range p.OfType(rs, Vpc) {
					if len(p.Linked(rs, FlowLog, "vpcId", v.URN)) == 0 {
						a.Report(v.URN, "VPC %s has no flow log", v.Name)
					}
				}
			},
		},
		{
			Name: "default-sg-no-rules", Description: "Default security groups are managed and allow no traffic",
			Severity: p.High, Enforcement: p.Mandatory,
			Controls: ctl(p.CIS, "5.4", p.PCI, "1.2.1"),
			ValidateStack: func(rs []p.Resource, a *p.Args) {
				for _, v := range p.OfType(rs, Vpc) {
					dsgs := p.Linked(rs, DefaultSG, "vpcId", v.URN)
					if len(dsgs) == 0 {
						a.Report(v.URN, "VPC %s leaves its default security group unmanaged (it allows all traffic between members)", v.Name)
						continue
					}
					for _, k := range []string{"ingress", "egress"} {
						l, st := dsgs[0].Props.List(k)
						a.Check(dsgs[0], st, len(l) == 0, "default security group of %s has %d %s rules; remove them", v.Name, len(l), k)
					}
				}
			},
		},
		{
			Name: "no-public-admin-ports", Description: "No security group opens SSH, RDP or other admin ports to the internet",
			Severity: p.Critical, Enforcement: p.Mandatory, Types: []string{SecurityGroup, SGRule, SGIngressRule},
			Controls:     ctl(p.CIS, "5.2", p.PCI, "1.3.1", p.HIPAA, "164.312(e)(1)"),
			Config:       p.Config{"ports": []any{float64(22), float64(3389)}},
			ConfigSchema: map[string]map[string]any{"ports": {"type": "array", "items": map[string]any{"type": "integer"}}},
			Validate:     validateAdminPorts,
		},
		{
			Name: "subnet-no-auto-public-ip", Description: "Subnets do not hand out public IPs automatically",
			Severity: p.Medium, Enforcement: p.Advisory, Types: []string{Subnet},
			Controls: ctl(p.PCI, "1.4.4"),
			Validate: func(r p.Resource, a *p.Args) {
				on, st := r.Props.Bool("mapPublicIpOnLaunch")
				a.Check(r, st, !on, "mapPublicIpOnLaunch is true")
			},
		},
		{
			Name: "ebs-encrypted", Description: "EBS volumes are encrypted with a customer-managed KMS key",
			Severity: p.High, Enforcement: p.Mandatory, Types: []string{EBSVolume},
			Controls: ctl(p.CIS, "2.2.1", p.PCI, "3.5.1", p.HIPAA, "164.312(a)(2)(iv)"),
			Validate: func(r p.Resource, a *p.Args) {
				on, st := r.Props.Bool("encrypted")
				a.Check(r, st, on, "volume %s is not encrypted", r.Name)
				if on {
					k, st := r.Props.String("kmsKeyId")
					a.Check(r, st, k != "", "volume %s uses the AWS-managed key; set kmsKeyId", r.Name)
				}
			},
		},
		{
			Name: "launch-template-ebs-encrypted", Description: "Launch templates encrypt every EBS block device",
			Severity: p.High, Enforcement: p.Mandatory, Types: []string{LaunchTemplate},
			Controls: ctl(p.CIS, "2.2.1", p.PCI, "3.5.1", p.HIPAA, "164.312(a)(2)(iv)"),
			Validate: func(r p.Resource, a *p.Args) {
				l, st := r.Props.List("blockDeviceMappings")
				if st == p.Unknowable {
					a.Unverifiable(r.URN, "block device mappings are not known until update")
				}
				for i := range l {
					on, st := r.Props.Bool(fmt.Sprintf("blockDeviceMappings.%d.ebs.encrypted", i))
					a.Check(r, st, on, "block device %d is not encrypted", i)
				}
			},
		},
		{
			Name: "efs-encrypted", Description: "EFS file systems are encrypted at rest",
			Severity: p.High, Enforcement: p.Mandatory, Types: []string{EFS},
			Controls: ctl(p.CIS, "2.4.1", p.PCI, "3.5.1", p.HIPAA, "164.312(a)(2)(iv)"),
			Validate: func(r p.Resource, a *p.Args) {
				on, st := r.Props.Bool("encrypted")
				a.Check(r, st, on, "file system %s is not encrypted", r.Name)
			},
		},
		{
			Name: "rds-encrypted", Description: "RDS instances and clusters encrypt storage",
			Severity: p.High, Enforcement: p.Mandatory, Types: []string{RDSInstance, RDSCluster},
			Controls: ctl(p.CIS, "2.3.1", p.PCI, "3.5.1", p.HIPAA, "164.312(a)(2)(iv)"),
			Validate: func(r p.Resource, a *p.Args) {
				on, st := r.Props.Bool("storageEncrypted")
				a.Check(r, st, on, "database %s does not encrypt storage", r.Name)
			},
		},
		{
			Name: "rds-not-public", Description: "RDS instances are not publicly accessible",
			Severity: p.Critical, Enforcement: p.Mandatory, Types: []string{RDSInstance},
			Controls: ctl(p.CIS, "2.3.3", p.PCI, "1.4.1", p.HIPAA, "164.312(e)(1)"),
			Validate: func(r p.Resource, a *p.Args) {
				on, st := r.Props.Bool("publiclyAccessible")
				a.Check(r, st, !on, "database %s is publicly accessible", r.Name)
			},
		},
		{
			Name: "eks-private-endpoint", Description: "EKS API endpoints are private, or public only to listed networks",
			Severity: p.High, Enforcement: p.Mandatory, Types: []string{EKSCluster},
			Controls: ctl(p.CISK8s, "5.4.2", p.PCI, "1.4.1", p.HIPAA, "164.312(e)(1)"),
			Validate: func(r p.Resource, a *p.Args) {
				priv, st := r.Props.Bool("vpcConfig.endpointPrivateAccess")
				a.Check(r, st, priv, "the private endpoint is off")
				pub, st := r.Props.Bool("vpcConfig.endpointPublicAccess")
				if st == p.Missing {
					pub = true // the AWS default
				}
				if !pub {
					return
				}
				cidrs, st := r.Props.Strings("vpcConfig.publicAccessCidrs")
				a.Check(r, st, len(cidrs) > 0 && !slices.Contains(cidrs, "0.0.0.0/0"),
					"the public endpoint is open to the internet; list allowed networks in publicAccessCidrs")
			},
		},
		{
			Name: "eks-control-plane-logs", Description: "EKS clusters send all control-plane log types",
			Severity: p.Medium, Enforcement: p.Mandatory, Types: []string{EKSCluster},
			Controls: ctl(p.CISK8s, "5.1.1", p.PCI, "10.2.1", p.HIPAA, "164.312(b)"),
			Validate: func(r p.Resource, a *p.Args) {
				logs, st := r.Props.Strings("enabledClusterLogTypes")
				var missing []string
				for _, l := range []string{"api", "audit", "authenticator", "controllerManager", "scheduler"} {
					if !slices.Contains(logs, l) {
						missing = append(missing, l)
					}
				}
				a.Check(r, st, len(missing) == 0, "log types %v are off", missing)
			},
		},
		{
			Name: "eks-secrets-encryption", Description: "EKS clusters encrypt Kubernetes secrets with KMS",
			Severity: p.High, Enforcement: p.Mandatory, Types: []string{EKSCluster},
			Controls: ctl(p.CISK8s, "5.3.1", p.PCI, "3.5.1", p.HIPAA, "164.312(a)(2)(iv)"),
			Validate: func(r p.Resource, a *p.Args) {
				res, st := r.Props.Strings("encryptionConfig.resources")
				a.Check(r, st, slices.Contains(res, "secrets"), "secrets are not envelope-encrypted")
			},
		},
		{
			Name: "iam-no-admin", Description: "No IAM policy allows every action on every resource",
			Severity: p.Critical, Enforcement: p.Mandatory, Types: []string{IAMPolicy, IAMRolePolicy, IAMUserPolicy, IAMGroupPolicy},
			Controls: ctl(p.CIS, "1.16", p.PCI, "7.2.1", p.HIPAA, "164.308(a)(4)"),
			Validate: iamStatements(func(act, res []any) bool { return hasAny(act, "*", "*:*") && hasAny(res, "*") },
				"allows \"*\" on \"*\"; grant the actions the role needs"),
		},
		{
			Name: "iam-no-passrole-wildcard", Description: "No IAM policy allows iam:PassRole on every role",
			Severity: p.High, Enforcement: p.Mandatory, Types: []string{IAMPolicy, IAMRolePolicy, IAMUserPolicy, IAMGroupPolicy},
			Controls: ctl(p.CIS, "1.16", p.PCI, "7.2.2"),
			Validate: iamStatements(func(act, res []any) bool { return hasAny(act, "iam:PassRole", "iam:*") && hasAny(res, "*") },
				"allows iam:PassRole on \"*\"; list the roles it may pass"),
		},
		{
			Name: "kms-key-rotation", Description: "Symmetric KMS keys rotate automatically",
			Severity: p.Medium, Enforcement: p.Mandatory, Types: []string{KMSKey},
			Controls: ctl(p.CIS, "3.8", p.PCI, "3.7.4", p.HIPAA, "164.312(a)(2)(iv)"),
			Validate: func(r p.Resource, a *p.Args) {
				if spec, _ := r.Props.String("customerMasterKeySpec"); spec != "" && spec != "SYMMETRIC_DEFAULT" {
					return
				}
				on, st := r.Props.Bool("enableKeyRotation")
				a.Check(r, st, on, "key %s does not rotate", r.Name)
			},
		},
		{
			Name: "log-retention", Description: "CloudWatch log groups keep logs for at least the configured days",
			Severity: p.Low, Enforcement: p.Mandatory, Types: []string{LogGroup},
			Controls:     ctl(p.CIS, "3.1", p.PCI, "10.5.1", p.HIPAA, "164.316(b)(2)"),
			Config:       p.Config{"minDays": float64(365)},
			ConfigSchema: map[string]map[string]any{"minDays": {"type": "integer", "minimum": 1}},
			Validate: func(r p.Resource, a *p.Args) {
				d, st := r.Props.Number("retentionInDays")
				min := a.Config.Int("minDays")
				a.Check(r, st, st == p.Known && int(d) >= min, "retention is %v days; keep at least %d (0 means never expire is not allowed either: set it)", d, min)
			},
		},
		{
			Name: "required-tags", Description: "Taggable resources carry the required tags",
			Severity: p.Low, Enforcement: p.Mandatory, Types: taggable,
			Controls:     ctl(p.PCI, "12.5.1", p.HIPAA, "164.310(d)(1)"),
			Config:       p.Config{"tags": []any{"Name"}},
			ConfigSchema: map[string]map[string]any{"tags": {"type": "array", "items": map[string]any{"type": "string"}}},
			Validate: func(r p.Resource, a *p.Args) {
				tags, st := r.Props.Map("tags")
				if st == p.Unknowable {
					a.Unverifiable(r.URN, "tags are not known until update")
					return
				}
				var missing []string
				for _, t := range a.Config.Strings("tags") {
					if v, ok := tags[t]; !ok || v == "" {
						missing = append(missing, t)
					}
				}
				if len(missing) > 0 {
					a.Report(r.URN, "missing tags %v", missing)
				}
			},
		},
		{
			Name: "imdsv2-required", Description: "Instances and launch templates require IMDSv2 tokens",
			Severity: p.High, Enforcement: p.Mandatory, Types: []string{Instance, LaunchTemplate},
			Controls: ctl(p.CIS, "5.6", p.PCI, "2.2.1"),
			Validate: func(r p.Resource, a *p.Args) {
				tok, st := r.Props.String("metadataOptions.httpTokens")
				a.Check(r, st, tok == "required", "metadataOptions.httpTokens is %q; set it to \"required\"", tok)
			},
		},
		{
			Name: "instance-no-public-ip", Description: "EC2 instances get no public IP address",
			Severity: p.Medium, Enforcement: p.Advisory, Types: []string{Instance},
			Controls: ctl(p.PCI, "1.4.4"),
			Validate: func(r p.Resource, a *p.Args) {
				on, st := r.Props.Bool("associatePublicIpAddress")
				a.Check(r, st, !on, "instance %s gets a public IP", r.Name)
			},
		},
	}}
}

// taggable are the resource types checked for required tags.
var taggable = []string{Vpc, Subnet, SecurityGroup, Instance, LaunchTemplate, EBSVolume, EFS, RDSInstance, RDSCluster,
	EKSCluster, KMSKey, LogGroup, Bucket, BucketLegacy, FlowLog,
	"aws:ec2/natGateway:NatGateway", "aws:ec2/internetGateway:InternetGateway", "aws:ec2/routeTable:RouteTable",
	"aws:ec2/eip:Eip", "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:iam/role:Role", "aws:eks/nodeGroup:NodeGroup"}

func hasAny(list []any, want ...string) bool {
	for _, v := range list {
		if s, ok := v.(string); ok && slices.Contains(want, s) {
			return true
		}
	}
	return false
}

// iamStatements reports Allow statements for which bad(actions, resources) holds.
func iamStatements(bad func(actions, resources []any) bool, msg string) func(p.Resource, *p.Args) {
	return func(r p.Resource, a *p.Args) {
		v, st := r.Props.Get("policy")
		if st == p.Unknowable {
			a.Unverifiable(r.URN, "the policy document is not known until update")
			return
		}
		stmts, ok := p.PolicyDocument(v)
		if !ok && st == p.Known {
			a.Report(r.URN, "the policy document is not valid JSON")
			return
		}
		for i, s := range stmts {
			act, _ := s["Action"].([]any)
			res, _ := s["Resource"].([]any)
			if s["Effect"] == "Allow" && bad(act, res) {
				a.Report(r.URN, "statement %d %s", i, msg)
			}
		}
	}
}

// validateAdminPorts checks inline ingress rules and standalone rules.
func validateAdminPorts(r p.Resource, a *p.Args) {
	var ports []int
	for _, v := range a.Config["ports"].([]any) {
		if f, ok := v.(float64); ok {
			ports = append(ports, int(f))
		}
	}
	check := func(rule p.Props, where string) {
		if t, _ := rule.String("type"); t == "egress" {
			return
		}
		cidrs, st := rule.Strings("cidrBlocks")
		if st == p.Missing {
			if c, st2 := rule.String("cidrIpv4"); st2 != p.Missing {
				cidrs, st = []string{c}, st2
			}
		}
		v6, _ := rule.Strings("ipv6CidrBlocks")
		if c, _ := rule.String("cidrIpv6"); c != "" {
			v6 = append(v6, c)
		}
		open := slices.Contains(cidrs, "0.0.0.0/0") || slices.Contains(v6, "::/0")
		if st == p.Unknowable {
			a.Unverifiable(r.URN, "%s: source CIDRs are not known until update", where)
			return
		}
		if !open {
			return
		}
		proto, _ := rule.String("protocol")
		if proto == "" {
			proto, _ = rule.String("ipProtocol")
		}
		from, _ := rule.Number("fromPort")
		to, _ := rule.Number("toPort")
		for _, port := range ports {
			if proto == "-1" || proto == "all" || (float64(port) >= from && float64(port) <= to) {
				a.Report(r.URN, "%s opens port %d to the internet", where, port)
			}
		}
	}
	if r.Type == SecurityGroup {
		l, _ := r.Props.List("ingress")
		for i := range l {
			m, _ := r.Props.Map(fmt.Sprintf("ingress.%d", i))
			check(m, fmt.Sprintf("ingress rule %d", i))
		}
		return
	}
	check(r.Props, "rule")
}
