// Package cluster is an EKS cluster for a Slipway environment: the cluster
// IAM role, a cluster security group, a KMS key for secrets encryption, all
// control-plane log types, a private endpoint (public only for explicit
// CIDRs), managed node groups in private subnets launched from a template
// that requires IMDSv2 and encrypts root volumes, an OIDC provider for IRSA
// and the core add-ons. It outputs a kubeconfig (exec auth, secret) and a
// ready Kubernetes provider. The in-cluster baseline lives in package
// components/baseline.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/eks"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/kms"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Type is the Pulumi type token of the component.
const Type = "slipway:cluster:Cluster"

// LogTypes are every EKS control-plane log type; all are on by default.
var LogTypes = []string{"api", "audit", "authenticator", "controllerManager", "scheduler"}

// DefaultAddons are installed on every cluster.
var DefaultAddons = []string{"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent"}

// Taint is a node group taint.
type Taint struct {
	Key, Value string
	// Effect is NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE.
	Effect string
}

// NodeGroup is one managed node group.
type NodeGroup struct {
	// Name is required and unique within the cluster.
	Name string
	// InstanceTypes defaults to ["t3.medium"].
	InstanceTypes []string
	// MinSize, DesiredSize, MaxSize (default 1, 2, 3).
	MinSize, DesiredSize, MaxSize int
	// DiskSizeGiB is the encrypted root volume size (default 50).
	DiskSizeGiB int
	Labels      map[string]string
	Taints      []Taint
	// Spot uses spot capacity.
	Spot bool
}

// Args configures a Cluster.
type Args struct {
	// Name is the EKS cluster name (required).
	Name string
	// Version is the Kubernetes version (default "1.33").
	Version string
	// VpcID and SubnetIDs place the control plane and nodes (use private subnets).
	VpcID     pulumi.StringInput
	SubnetIDs pulumi.StringArrayInput
	// PublicAccessCIDRs turns the public endpoint on for exactly these
	// networks; by default the endpoint is private only.
	PublicAccessCIDRs []string
	// LogTypes overrides the control-plane log types (default: all).
	LogTypes []string
	// LogRetentionDays is the control-plane log group retention (default 365).
	LogRetentionDays int
	// KMSKeyARN encrypts Kubernetes secrets with a given key (default: a new rotating key).
	KMSKeyARN pulumi.StringInput
	// NodeGroups default to one group named "general".
	NodeGroups []NodeGroup
	// Addons overrides DefaultAddons.
	Addons []string
	// Tags are added to every resource.
	Tags map[string]string
}

// Cluster is the component.
type Cluster struct {
	pulumi.ResourceState

	ClusterName pulumi.StringOutput
	Endpoint    pulumi.StringOutput
	// Kubeconfig uses `aws eks get-token`; it is a secret output.
	Kubeconfig pulumi.StringOutput
	// OIDCProviderARN is the IRSA identity provider.
	OIDCProviderARN pulumi.StringOutput
	// Provider is a Kubernetes provider for the cluster.
	Provider *kubernetes.Provider
}

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)
	versionRE  = regexp.MustCompile(`^1\.(2[89]|3\d)$`)
	instanceRE = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[0-9]*[a-z0-9]+$`)
	effects    = []string{"NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"}
)

func (a Args) withDefaults() Args {
	if a.Version == "" {
		a.Version = "1.33"
	}
	if a.LogTypes == nil {
		a.LogTypes = LogTypes
	}
	if a.LogRetentionDays == 0 {
		a.LogRetentionDays = 365
	}
	if a.Addons == nil {
		a.Addons = DefaultAddons
	}
	if len(a.NodeGroups) == 0 {
		a.NodeGroups = []NodeGroup{{Name: "general"}}
	}
	groups := make([]NodeGroup, len(a.NodeGroups))
	for i, g := range a.NodeGroups {
		if len(g.InstanceTypes) == 0 {
			g.InstanceTypes = []string{"t3.medium"}
		}
		if g.MinSize == 0 && g.DesiredSize == 0 && g.MaxSize == 0 {
			g.MinSize, g.DesiredSize, g.MaxSize = 1, 2, 3
		}
		if g.DiskSizeGiB == 0 {
			g.DiskSizeGiB = 50
		}
		groups[i] = g
	}
	a.NodeGroups = groups
	return a
}

// Validate reports every invalid field, naming it and the fix.
func (a Args) Validate() error {
	a = a.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("cluster: "+format, args...)) }
	if !nameRE.MatchString(a.Name) {
		bad("Args.Name %q must start with a letter or digit and hold at most 100 letters, digits, '-' or '_'", a.Name)
	}
	if !versionRE.MatchString(a.Version) {
		bad("Args.Version %q is not a supported EKS version; use e.g. \"1.33\"", a.Version)
	}
	if a.VpcID == nil || a.SubnetIDs == nil {
		bad("Args.VpcID and Args.SubnetIDs are required; pass the network's VpcID and PrivateSubnetIDs")
	}
	for i, c := range a.PublicAccessCIDRs {
		p, err := netip.ParsePrefix(c)
		switch {
		case err != nil:
			bad("Args.PublicAccessCIDRs[%d] %q is not a CIDR", i, c)
		case p.Bits() == 0:
			bad("Args.PublicAccessCIDRs[%d] %q opens the API endpoint to the internet; list your office or CI networks", i, c)
		}
	}
	for i, l := range a.LogTypes {
		if !slices.Contains(LogTypes, l) {
			bad("Args.LogTypes[%d] %q is not an EKS log type; use %v", i, l, LogTypes)
		}
	}
	seen := map[string]bool{}
	for i, g := range a.NodeGroups {
		f := fmt.Sprintf("Args.NodeGroups[%d]", i)
		if !nameRE.MatchString(g.Name) || seen[g.Name] {
			bad("%s.Name %q must be unique, letters, digits, '-' or '_'", f, g.Name)
		}
		seen[g.Name] = true
		if g.MinSize < 0 || g.MaxSize < 1 || g.MinSize > g.DesiredSize || g.DesiredSize > g.MaxSize {
			bad("%s sizes min %d / desired %d / max %d must satisfy 0 <= min <= desired <= max and max >= 1", f, g.MinSize, g.DesiredSize, g.MaxSize)
		}
		if g.MaxSize > 1000 {
			bad("%s.MaxSize %d is above the EKS limit of 1000 nodes per group", f, g.MaxSize)
		}
		for j, it := range g.InstanceTypes {
			if !instanceRE.MatchString(it) {
				bad("%s.InstanceTypes[%d] %q is not an instance type such as \"m6i.large\"", f, j, it)
			}
		}
		if g.DiskSizeGiB < 20 || g.DiskSizeGiB > 16384 {
			bad("%s.DiskSizeGiB %d is out of range; use 20-16384", f, g.DiskSizeGiB)
		}
		for j, t := range g.Taints {
			if t.Key == "" || !slices.Contains(effects, t.Effect) {
				bad("%s.Taints[%d] needs a Key and an Effect of %v", f, j, effects)
			}
		}
	}
	return errors.Join(errs...)
}

func assumeRole(service string) string {
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{{
		"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": map[string]any{"Service": service}}}})
	return string(b)
}

// New registers the cluster. Invalid Args fail before any resource is registered.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Cluster, error) {
	if err := args.Validate(); err != nil {
		return nil, err
	}
	a := args.withDefaults()
	c := &Cluster{}
	if err := ctx.RegisterComponentResource(Type, name, c, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(c)
	tags := func(n string) pulumi.StringMap {
		m := pulumi.StringMap{"Name": pulumi.String(n)}
		for k, v := range a.Tags {
			m[k] = pulumi.String(v)
		}
		return m
	}

	role, err := iam.NewRole(ctx, name+"-cluster", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(assumeRole("eks.amazonaws.com")),
		Tags: tags(name + "-cluster")}, child)
	if err != nil {
		return nil, err
	}
	attach, err := iam.NewRolePolicyAttachment(ctx, name+"-cluster", &iam.RolePolicyAttachmentArgs{Role: role.Name,
		PolicyArn: pulumi.String("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy")}, child)
	if err != nil {
		return nil, err
	}
	keyARN := a.KMSKeyARN
	if keyARN == nil {
		key, err := kms.NewKey(ctx, name+"-secrets", &kms.KeyArgs{Description: pulumi.String("EKS secrets encryption for " + a.Name),
			EnableKeyRotation: pulumi.Bool(true), DeletionWindowInDays: pulumi.Int(30), Tags: tags(name + "-secrets")}, child)
		if err != nil {
			return nil, err
		}
		keyARN = key.Arn
	}
	sg, err := ec2.NewSecurityGroup(ctx, name+"-cluster", &ec2.SecurityGroupArgs{VpcId: a.VpcID,
		Description: pulumi.String("EKS control plane " + a.Name), Tags: tags(name + "-cluster")}, child)
	if err != nil {
		return nil, err
	}
	// EKS writes to this group; creating it first lets us set retention.
	logs, err := cloudwatch.NewLogGroup(ctx, name+"-logs", &cloudwatch.LogGroupArgs{Name: pulumi.Sprintf("/aws/eks/%s/cluster", a.Name),
		RetentionInDays: pulumi.Int(a.LogRetentionDays), Tags: tags(name + "-logs")}, child)
	if err != nil {
		return nil, err
	}
	public := len(a.PublicAccessCIDRs) > 0
	var publicCIDRs pulumi.StringArrayInput
	if public {
		publicCIDRs = pulumi.ToStringArray(a.PublicAccessCIDRs)
	}
	eksCluster, err := eks.NewCluster(ctx, name, &eks.ClusterArgs{
		Name: pulumi.String(a.Name), Version: pulumi.String(a.Version), RoleArn: role.Arn,
		VpcConfig: &eks.ClusterVpcConfigArgs{SubnetIds: a.SubnetIDs, SecurityGroupIds: pulumi.StringArray{sg.ID()},
			EndpointPrivateAccess: pulumi.Bool(true), EndpointPublicAccess: pulumi.Bool(public), PublicAccessCidrs: publicCIDRs},
		EnabledClusterLogTypes: pulumi.ToStringArray(a.LogTypes),
		EncryptionConfig: &eks.ClusterEncryptionConfigArgs{Resources: pulumi.StringArray{pulumi.String("secrets")},
			Provider: &eks.ClusterEncryptionConfigProviderArgs{KeyArn: keyARN}},
		AccessConfig: &eks.ClusterAccessConfigArgs{AuthenticationMode: pulumi.String("API")},
		Tags:         tags(name),
	}, child, pulumi.DependsOn([]pulumi.Resource{attach, logs}))
	if err != nil {
		return nil, err
	}

	issuer := eksCluster.Identities.ApplyT(func(ids []eks.ClusterIdentity) (string, error) {
		for _, id := range ids {
			for _, o := range id.Oidcs {
				if o.Issuer != nil {
					return *o.Issuer, nil
				}
			}
		}
		return "", nil
	}).(pulumi.StringOutput)
	oidc, err := iam.NewOpenIdConnectProvider(ctx, name+"-oidc", &iam.OpenIdConnectProviderArgs{
		Url: issuer, ClientIdLists: pulumi.StringArray{pulumi.String("sts.amazonaws.com")},
		// IAM validates EKS issuers against its own trusted CAs; the thumbprint is kept for older partitions.
		ThumbprintLists: pulumi.StringArray{pulumi.String("9e99a48a9960b14926bb7f3b02e22da2b0ab7280")},
		Tags:            tags(name + "-oidc"),
	}, child)
	if err != nil {
		return nil, err
	}

	nodeRole, err := iam.NewRole(ctx, name+"-nodes", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(assumeRole("ec2.amazonaws.com")),
		Tags: tags(name + "-nodes")}, child)
	if err != nil {
		return nil, err
	}
	var nodeAttach []pulumi.Resource
	for _, p := range []string{"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"} {
		at, err := iam.NewRolePolicyAttachment(ctx, name+"-nodes-"+p, &iam.RolePolicyAttachmentArgs{Role: nodeRole.Name,
			PolicyArn: pulumi.String("arn:aws:iam::aws:policy/" + p)}, child)
		if err != nil {
			return nil, err
		}
		nodeAttach = append(nodeAttach, at)
	}
	var groups []pulumi.Resource
	for _, g := range a.NodeGroups {
		gn := name + "-" + g.Name
		lt, err := ec2.NewLaunchTemplate(ctx, gn, &ec2.LaunchTemplateArgs{
			NamePrefix: pulumi.String(gn + "-"),
			MetadataOptions: &ec2.LaunchTemplateMetadataOptionsArgs{HttpEndpoint: pulumi.String("enabled"),
				HttpTokens: pulumi.String("required"), HttpPutResponseHopLimit: pulumi.Int(2)},
			BlockDeviceMappings: ec2.LaunchTemplateBlockDeviceMappingArray{&ec2.LaunchTemplateBlockDeviceMappingArgs{
				DeviceName: pulumi.String("/dev/xvda"),
				Ebs: &ec2.LaunchTemplateBlockDeviceMappingEbsArgs{Encrypted: pulumi.String("true"), VolumeSize: pulumi.Int(g.DiskSizeGiB),
					VolumeType: pulumi.String("gp3"), DeleteOnTermination: pulumi.String("true")}}},
			Tags: tags(gn),
		}, child)
		if err != nil {
			return nil, err
		}
		var taints eks.NodeGroupTaintArray
		for _, t := range g.Taints {
			taints = append(taints, &eks.NodeGroupTaintArgs{Key: pulumi.String(t.Key), Value: pulumi.String(t.Value), Effect: pulumi.String(t.Effect)})
		}
		capacity := "ON_DEMAND"
		if g.Spot {
			capacity = "SPOT"
		}
		ng, err := eks.NewNodeGroup(ctx, gn, &eks.NodeGroupArgs{
			ClusterName: eksCluster.Name, NodeGroupNamePrefix: pulumi.String(g.Name + "-"), NodeRoleArn: nodeRole.Arn,
			SubnetIds: a.SubnetIDs, InstanceTypes: pulumi.ToStringArray(g.InstanceTypes), CapacityType: pulumi.String(capacity),
			ScalingConfig: &eks.NodeGroupScalingConfigArgs{MinSize: pulumi.Int(g.MinSize), DesiredSize: pulumi.Int(g.DesiredSize),
				MaxSize: pulumi.Int(g.MaxSize)},
			LaunchTemplate: &eks.NodeGroupLaunchTemplateArgs{Id: lt.ID(), Version: lt.LatestVersion.ApplyT(func(v int) string { return fmt.Sprint(v) }).(pulumi.StringOutput)},
			Labels:         pulumi.ToStringMap(g.Labels), Taints: taints, Tags: tags(gn),
		}, child, pulumi.DependsOn(nodeAttach))
		if err != nil {
			return nil, err
		}
		groups = append(groups, ng)
	}
	for _, addon := range a.Addons {
		if _, err := eks.NewAddon(ctx, name+"-"+addon, &eks.AddonArgs{ClusterName: eksCluster.Name, AddonName: pulumi.String(addon),
			ResolveConflictsOnUpdate: pulumi.String("OVERWRITE"), Tags: tags(name + "-" + addon)},
			child, pulumi.DependsOn(groups)); err != nil {
			return nil, err
		}
	}

	kubeconfig := pulumi.All(eksCluster.Name, eksCluster.Endpoint, eksCluster.CertificateAuthority.Data()).ApplyT(
		func(v []any) (string, error) {
			ca, _ := v[2].(*string)
			return Kubeconfig(v[0].(string), v[1].(string), deref(ca))
		}).(pulumi.StringOutput)
	kubeconfig = pulumi.ToSecret(kubeconfig).(pulumi.StringOutput)
	prov, err := kubernetes.NewProvider(ctx, name, &kubernetes.ProviderArgs{Kubeconfig: kubeconfig}, child, pulumi.DependsOn(groups))
	if err != nil {
		return nil, err
	}
	c.ClusterName = eksCluster.Name
	c.Endpoint = eksCluster.Endpoint
	c.Kubeconfig = kubeconfig
	c.OIDCProviderARN = oidc.Arn
	c.Provider = prov
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{"clusterName": c.ClusterName, "endpoint": c.Endpoint,
		"kubeconfig": c.Kubeconfig, "oidcProviderArn": c.OIDCProviderARN}); err != nil {
		return nil, err
	}
	return c, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Kubeconfig returns a kubeconfig for an EKS cluster that authenticates with
// `aws eks get-token` (no long-lived credentials in the file).
func Kubeconfig(name, endpoint, caData string) (string, error) {
	cfg := map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": name,
		"clusters": []any{map[string]any{"name": name, "cluster": map[string]any{"server": endpoint, "certificate-authority-data": caData}}},
		"contexts": []any{map[string]any{"name": name, "context": map[string]any{"cluster": name, "user": name}}},
		"users": []any{map[string]any{"name": name, "user": map[string]any{"exec": map[string]any{
			"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
			"args": []string{"eks", "get-token", "--cluster-name", name, "--output", "json"}, "interactiveMode": "Never"}}}},
	}
	b, err := json.Marshal(cfg)
	return string(b), err
}
