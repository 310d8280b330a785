package storage

import (
	"encoding/json"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slipwayhq/slipway/integration/mocktest"
)

func runBucket(t *testing.T, args BucketArgs) *mocktest.Graph {
	t.Helper()
	g, err := mocktest.Run(func(ctx *pulumi.Context) error {
		_, err := NewBucket(ctx, "data", args)
		return err
	}, nil)
	require.NoError(t, err)
	return g
}

func TestBucket_SecureByDefault(t *testing.T) {
	g := runBucket(t, BucketArgs{Tags: map[string]string{"env": "dev"}})
	assert.Equal(t, 2, g.Count("aws:s3/bucketV2:BucketV2"), "data and log bucket")
	assert.Equal(t, 1, g.Count("aws:kms/key:Key"))
	key := g.OfType("aws:kms/key:Key")[0].Inputs
	assert.Equal(t, true, key["enableKeyRotation"])

	sse, ok := g.Named("aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2", "data")
	require.True(t, ok)
	assert.Equal(t, "aws:kms", mocktest.Dig(sse.Inputs, "rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm"))
	assert.NotEmpty(t, mocktest.Dig(sse.Inputs, "rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyId"))
	assert.Equal(t, true, mocktest.Dig(sse.Inputs, "rules", 0, "bucketKeyEnabled"))

	for _, pab := range g.OfType("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock") {
		for _, f := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
			assert.Equal(t, true, pab.Inputs[f], "%s.%s", pab.Name, f)
		}
	}
	assert.Equal(t, 2, g.Count("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"), "the log bucket too")

	pol, _ := g.Named("aws:s3/bucketPolicy:BucketPolicy", "data")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(pol.Inputs["policy"].(string)), &doc))
	assert.Equal(t, "Deny", mocktest.Dig(doc, "Statement", 0, "Effect"))
	assert.Equal(t, "false", mocktest.Dig(doc, "Statement", 0, "Condition", "Bool", "aws:SecureTransport"))

	ver, _ := g.Named("aws:s3/bucketVersioningV2:BucketVersioningV2", "data")
	assert.Equal(t, "Enabled", mocktest.Dig(ver.Inputs, "versioningConfiguration", "status"))
	own, _ := g.Named("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "data")
	assert.Equal(t, "BucketOwnerEnforced", mocktest.Dig(own.Inputs, "rule", "objectOwnership"))
	lc, _ := g.Named("aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2", "data")
	assert.EqualValues(t, 90, mocktest.Dig(lc.Inputs, "rules", 0, "noncurrentVersionExpiration", "noncurrentDays"))
	assert.EqualValues(t, 7, mocktest.Dig(lc.Inputs, "rules", 0, "abortIncompleteMultipartUpload", "daysAfterInitiation"))
	logging, ok := g.Named("aws:s3/bucketLoggingV2:BucketLoggingV2", "data")
	require.True(t, ok)
	assert.Equal(t, "data-logs-id", logging.Inputs["targetBucket"])

	for _, r := range g.Resources {
		assert.False(t, r.Protect, "not production: %s is not protected", r.Name)
	}
}

func TestBucket_ProductionIsProtectedAndRetained(t *testing.T) {
	g := runBucket(t, BucketArgs{Production: true})
	for _, typ := range []string{"aws:s3/bucketV2:BucketV2", "aws:kms/key:Key"} {
		for _, r := range g.OfType(typ) {
			assert.True(t, r.Protect, "%s %s", typ, r.Name)
			assert.True(t, r.RetainOnDelete, "%s %s", typ, r.Name)
		}
	}
	key := g.OfType("aws:kms/key:Key")[0].Inputs
	assert.EqualValues(t, 30, key["deletionWindowInDays"])
}

func TestBucket_Overrides(t *testing.T) {
	g := runBucket(t, BucketArgs{KMSKeyARN: pulumi.String("arn:aws:kms:us-east-1:1:key/x"), DisableAccessLogging: true,
		LifecycleRules: []LifecycleRule{{ID: "archive", Prefix: "logs/", TransitionDays: 30, StorageClass: "GLACIER", ExpirationDays: 365}}})
	assert.Zero(t, g.Count("aws:kms/key:Key"), "a given key is used")
	assert.Equal(t, 1, g.Count("aws:s3/bucketV2:BucketV2"), "no log bucket without logging")
	assert.Zero(t, g.Count("aws:s3/bucketLoggingV2:BucketLoggingV2"))
	lc, _ := g.Named("aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2", "data")
	assert.Equal(t, "GLACIER", mocktest.Dig(lc.Inputs, "rules", 0, "transitions", 0, "storageClass"))
	assert.EqualValues(t, 365, mocktest.Dig(lc.Inputs, "rules", 0, "expiration", "days"))
	assert.Equal(t, "logs/", mocktest.Dig(lc.Inputs, "rules", 0, "filter", "prefix"))
}

func TestVolumeAndFileSystem_Encrypted(t *testing.T) {
	g, err := mocktest.Run(func(ctx *pulumi.Context) error {
		if _, err := NewVolume(ctx, "disk", VolumeArgs{AvailabilityZone: "us-east-1a", Production: true}); err != nil {
			return err
		}
		_, err := NewFileSystem(ctx, "shared", FileSystemArgs{VpcID: pulumi.String("vpc-1"), VpcCIDR: "10.0.0.0/16",
			SubnetIDs: []pulumi.StringInput{pulumi.String("s-1"), pulumi.String("s-2")}})
		return err
	}, nil)
	require.NoError(t, err)
	vol := g.OfType("aws:ebs/volume:Volume")[0]
	assert.Equal(t, true, vol.Inputs["encrypted"])
	assert.NotEmpty(t, vol.Inputs["kmsKeyId"])
	assert.Equal(t, "gp3", vol.Inputs["type"])
	assert.True(t, vol.Protect)
	assert.Equal(t, true, vol.Inputs["finalSnapshot"])

	fs := g.OfType("aws:efs/fileSystem:FileSystem")[0].Inputs
	assert.Equal(t, true, fs["encrypted"])
	assert.NotEmpty(t, fs["kmsKeyId"])
	assert.Equal(t, 2, g.Count("aws:efs/mountTarget:MountTarget"))
	assert.Equal(t, 1, g.Count("aws:efs/backupPolicy:BackupPolicy"))
	sg := g.OfType("aws:ec2/securityGroup:SecurityGroup")[0].Inputs
	assert.Equal(t, []any{"10.0.0.0/16"}, mocktest.Dig(sg, "ingress", 0, "cidrBlocks"), "NFS only from the VPC")
	assert.EqualValues(t, 2049, mocktest.Dig(sg, "ingress", 0, "fromPort"))
}

func TestStorage_ValidationErrorsNameTheField(t *testing.T) {
	cases := map[string]struct {
		run  func(ctx *pulumi.Context) error
		want string
	}{
		"prod unversioned": {func(ctx *pulumi.Context) error {
			_, err := NewBucket(ctx, "b", BucketArgs{Production: true, DisableVersioning: true})
			return err
		}, "BucketArgs.DisableVersioning cannot be set with Production"},
		"prod unlogged": {func(ctx *pulumi.Context) error {
			_, err := NewBucket(ctx, "b", BucketArgs{Production: true, DisableAccessLogging: true})
			return err
		}, "BucketArgs.DisableAccessLogging cannot be set with Production"},
		"rule id": {func(ctx *pulumi.Context) error {
			_, err := NewBucket(ctx, "b", BucketArgs{LifecycleRules: []LifecycleRule{{ID: "a b", ExpirationDays: 1}}})
			return err
		}, "BucketArgs.LifecycleRules[0].ID \"a b\""},
		"empty rule": {func(ctx *pulumi.Context) error {
			_, err := NewBucket(ctx, "b", BucketArgs{LifecycleRules: []LifecycleRule{{ID: "x"}}})
			return err
		}, "LifecycleRules[0] does nothing"},
		"storage class": {func(ctx *pulumi.Context) error {
			_, err := NewBucket(ctx, "b", BucketArgs{LifecycleRules: []LifecycleRule{{ID: "x", TransitionDays: 1, StorageClass: "COLD"}}})
			return err
		}, "LifecycleRules[0].StorageClass \"COLD\""},
		"expire before transition": {func(ctx *pulumi.Context) error {
			_, err := NewBucket(ctx, "b", BucketArgs{LifecycleRules: []LifecycleRule{{ID: "x", TransitionDays: 30, ExpirationDays: 10}}})
			return err
		}, "ExpirationDays 10 must come after TransitionDays 30"},
		"volume az": {func(ctx *pulumi.Context) error {
			_, err := NewVolume(ctx, "v", VolumeArgs{})
			return err
		}, "VolumeArgs.AvailabilityZone is empty"},
		"volume size": {func(ctx *pulumi.Context) error {
			_, err := NewVolume(ctx, "v", VolumeArgs{AvailabilityZone: "a", SizeGiB: 99999})
			return err
		}, "VolumeArgs.SizeGiB 99999"},
		"volume type": {func(ctx *pulumi.Context) error {
			_, err := NewVolume(ctx, "v", VolumeArgs{AvailabilityZone: "a", Type: "ssd"})
			return err
		}, "VolumeArgs.Type \"ssd\""},
		"efs open": {func(ctx *pulumi.Context) error {
			_, err := NewFileSystem(ctx, "f", FileSystemArgs{VpcID: pulumi.String("v"), VpcCIDR: "0.0.0.0/0", SubnetIDs: []pulumi.StringInput{pulumi.String("s")}})
			return err
		}, "would open NFS to the world"},
		"efs subnets": {func(ctx *pulumi.Context) error {
			_, err := NewFileSystem(ctx, "f", FileSystemArgs{VpcID: pulumi.String("v"), VpcCIDR: "10.0.0.0/16"})
			return err
		}, "FileSystemArgs.SubnetIDs is empty"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g, err := mocktest.Run(tc.run, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, g.Resources)
		})
	}
}
