package storage

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ebs"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/efs"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// VolumeType and FileSystemType are the Pulumi type tokens of the components.
const (
	VolumeType     = "slipway:storage:Volume"
	FileSystemType = "slipway:storage:FileSystem"
)

// VolumeArgs configures an encrypted EBS volume.
type VolumeArgs struct {
	// AvailabilityZone is required.
	AvailabilityZone string
	// SizeGiB is the size (default 20, at most 16384).
	SizeGiB int
	// Type is the volume type (default "gp3").
	Type string
	// KMSKeyARN encrypts with a given key (default: a new rotating key).
	KMSKeyARN pulumi.StringInput
	// Production protects the volume and takes a final snapshot on deletion.
	Production bool
	Tags       map[string]string
}

// Volume is the EBS volume component.
type Volume struct {
	pulumi.ResourceState
	VolumeID pulumi.StringOutput
}

var volumeTypes = []string{"gp2", "gp3", "io1", "io2", "st1", "sc1"}

// Validate reports every invalid field, naming it and the fix.
func (a VolumeArgs) Validate() error {
	var errs []error
	if a.AvailabilityZone == "" {
		errs = append(errs, errors.New("storage: VolumeArgs.AvailabilityZone is empty; set the zone of the instances that attach it"))
	}
	if a.SizeGiB < 0 || a.SizeGiB > 16384 {
		errs = append(errs, fmt.Errorf("storage: VolumeArgs.SizeGiB %d is out of range; use 1-16384", a.SizeGiB))
	}
	if a.Type != "" && !slices.Contains(volumeTypes, a.Type) {
		errs = append(errs, fmt.Errorf("storage: VolumeArgs.Type %q is not an EBS volume type; use one of %v", a.Type, volumeTypes))
	}
	return errors.Join(errs...)
}

// NewVolume registers an encrypted EBS volume.
func NewVolume(ctx *pulumi.Context, name string, args VolumeArgs, opts ...pulumi.ResourceOption) (*Volume, error) {
	if err := args.Validate(); err != nil {
		return nil, err
	}
	if args.SizeGiB == 0 {
		args.SizeGiB = 20
	}
	if args.Type == "" {
		args.Type = "gp3"
	}
	v := &Volume{}
	if err := ctx.RegisterComponentResource(VolumeType, name, v, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(v)
	key := args.KMSKeyARN
	if key == nil {
		k, err := newKey(ctx, name, "Slipway volume "+name, args.Tags, args.Production, child)
		if err != nil {
			return nil, err
		}
		key = k.Arn
	}
	vol, err := ebs.NewVolume(ctx, name, &ebs.VolumeArgs{
		AvailabilityZone: pulumi.String(args.AvailabilityZone), Size: pulumi.Int(args.SizeGiB), Type: pulumi.String(args.Type),
		Encrypted: pulumi.Bool(true), KmsKeyId: key, FinalSnapshot: pulumi.Bool(args.Production), Tags: tagMap(name, args.Tags),
	}, append([]pulumi.ResourceOption{child}, protection(args.Production)...)...)
	if err != nil {
		return nil, err
	}
	v.VolumeID = vol.ID().ToStringOutput()
	return v, ctx.RegisterResourceOutputs(v, pulumi.Map{"volumeId": v.VolumeID})
}

// FileSystemArgs configures an encrypted EFS file system.
type FileSystemArgs struct {
	// VpcID and VpcCIDR place the file system; only VpcCIDR may reach NFS.
	VpcID   pulumi.StringInput
	VpcCIDR string
	// SubnetIDs get one mount target each (use the private subnets).
	SubnetIDs []pulumi.StringInput
	// KMSKeyARN encrypts with a given key (default: a new rotating key).
	KMSKeyARN pulumi.StringInput
	// TransitionToIA moves files to infrequent access (default "AFTER_30_DAYS").
	TransitionToIA string
	// Production protects the file system and keeps automatic backups on.
	Production bool
	Tags       map[string]string
}

// FileSystem is the EFS component.
type FileSystem struct {
	pulumi.ResourceState
	FileSystemID pulumi.StringOutput
}

var iaTransitions = []string{"AFTER_1_DAY", "AFTER_7_DAYS", "AFTER_14_DAYS", "AFTER_30_DAYS", "AFTER_60_DAYS", "AFTER_90_DAYS",
	"AFTER_180_DAYS", "AFTER_270_DAYS", "AFTER_365_DAYS"}

// Validate reports every invalid field, naming it and the fix.
func (a FileSystemArgs) Validate() error {
	var errs []error
	if a.VpcID == nil {
		errs = append(errs, errors.New("storage: FileSystemArgs.VpcID is nil; pass the network's VpcID"))
	}
	if p, err := netip.ParsePrefix(a.VpcCIDR); err != nil || !p.Addr().Is4() {
		errs = append(errs, fmt.Errorf("storage: FileSystemArgs.VpcCIDR %q is not an IPv4 CIDR; pass the network's CIDR", a.VpcCIDR))
	} else if p.Bits() == 0 {
		errs = append(errs, errors.New("storage: FileSystemArgs.VpcCIDR 0.0.0.0/0 would open NFS to the world; pass the VPC's CIDR"))
	}
	if len(a.SubnetIDs) == 0 {
		errs = append(errs, errors.New("storage: FileSystemArgs.SubnetIDs is empty; pass the private subnets for mount targets"))
	}
	if a.TransitionToIA != "" && !slices.Contains(iaTransitions, a.TransitionToIA) {
		errs = append(errs, fmt.Errorf("storage: FileSystemArgs.TransitionToIA %q is not an EFS transition; use one of %v", a.TransitionToIA, iaTransitions))
	}
	return errors.Join(errs...)
}

// NewFileSystem registers an encrypted EFS file system with mount targets.
func NewFileSystem(ctx *pulumi.Context, name string, args FileSystemArgs, opts ...pulumi.ResourceOption) (*FileSystem, error) {
	if err := args.Validate(); err != nil {
		return nil, err
	}
	if args.TransitionToIA == "" {
		args.TransitionToIA = "AFTER_30_DAYS"
	}
	f := &FileSystem{}
	if err := ctx.RegisterComponentResource(FileSystemType, name, f, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(f)
	keep := append([]pulumi.ResourceOption{child}, protection(args.Production)...)
	key := args.KMSKeyARN
	if key == nil {
		k, err := newKey(ctx, name, "Slipway file system "+name, args.Tags, args.Production, child)
		if err != nil {
			return nil, err
		}
		key = k.Arn
	}
	fs, err := efs.NewFileSystem(ctx, name, &efs.FileSystemArgs{
		Encrypted: pulumi.Bool(true), KmsKeyId: key, PerformanceMode: pulumi.String("generalPurpose"),
		ThroughputMode: pulumi.String("elastic"),
		LifecyclePolicies: efs.FileSystemLifecyclePolicyArray{&efs.FileSystemLifecyclePolicyArgs{
			TransitionToIa: pulumi.String(args.TransitionToIA)}},
		Tags: tagMap(name, args.Tags),
	}, keep...)
	if err != nil {
		return nil, err
	}
	if _, err := efs.NewBackupPolicy(ctx, name, &efs.BackupPolicyArgs{FileSystemId: fs.ID(),
		BackupPolicy: &efs.BackupPolicyBackupPolicyArgs{Status: pulumi.String("ENABLED")}}, child); err != nil {
		return nil, err
	}
	sg, err := ec2.NewSecurityGroup(ctx, name+"-nfs", &ec2.SecurityGroupArgs{
		VpcId: args.VpcID, Description: pulumi.String("NFS from the VPC to " + name),
		Ingress: ec2.SecurityGroupIngressArray{&ec2.SecurityGroupIngressArgs{Protocol: pulumi.String("tcp"),
			FromPort: pulumi.Int(2049), ToPort: pulumi.Int(2049), CidrBlocks: pulumi.StringArray{pulumi.String(args.VpcCIDR)},
			Description: pulumi.String("NFS from the VPC")}},
		Tags: tagMap(name+"-nfs", args.Tags),
	}, child)
	if err != nil {
		return nil, err
	}
	for i, sub := range args.SubnetIDs {
		if _, err := efs.NewMountTarget(ctx, fmt.Sprintf("%s-%d", name, i), &efs.MountTargetArgs{
			FileSystemId: fs.ID(), SubnetId: sub, SecurityGroups: pulumi.StringArray{sg.ID()}}, child); err != nil {
			return nil, err
		}
	}
	f.FileSystemID = fs.ID().ToStringOutput()
	return f, ctx.RegisterResourceOutputs(f, pulumi.Map{"fileSystemId": f.FileSystemID})
}
