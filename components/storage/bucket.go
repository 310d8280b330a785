// Package storage holds Slipway's AWS storage components, secure by default:
//   - Bucket: an S3 bucket with SSE-KMS (its own rotating key, or one given)
//     and a bucket key, versioning, all four public-access-block flags, a
//     policy denying non-TLS access, lifecycle rules, server access logging to
//     a log bucket, and bucket-owner-enforced ownership.
//   - Volume: an encrypted EBS volume.
//   - FileSystem: an encrypted EFS file system with mount targets in private
//     subnets, reachable over NFS only from the VPC.
//
// Production parameters (Args.Production) add Protect and RetainOnDelete, so
// neither a mistaken destroy nor a replacement deletes the data.
package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/kms"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// BucketType is the Pulumi type token of the bucket component.
const BucketType = "slipway:storage:Bucket"

// LogBucketTag is set to "access-logs" on buckets that receive server access
// logs (which S3 can deliver only to SSE-S3 buckets); policies recognise it.
const LogBucketTag = "slipway:purpose"

// LifecycleRule moves or expires objects under a prefix.
type LifecycleRule struct {
	// ID names the rule (required, unique).
	ID string
	// Prefix limits the rule to keys with this prefix ("" = every object).
	Prefix string
	// TransitionDays and StorageClass move objects after that many days
	// (StorageClass default "STANDARD_IA" when TransitionDays is set).
	TransitionDays int
	StorageClass   string
	// ExpirationDays deletes current versions after that many days (0 = never).
	ExpirationDays int
	// NoncurrentExpirationDays deletes old versions after that many days (0 = never).
	NoncurrentExpirationDays int
}

// BucketArgs configures a Bucket. The zero value is the secure default.
type BucketArgs struct {
	// KMSKeyARN encrypts objects with a given key; by default the bucket gets
	// its own customer-managed key with rotation.
	KMSKeyARN pulumi.StringInput
	// DisableVersioning turns versioning off (allowed outside production only).
	DisableVersioning bool
	// LifecycleRules replace the default rule (old versions expire after 90
	// days, incomplete multipart uploads are aborted after 7).
	LifecycleRules []LifecycleRule
	// LogBucket receives server access logs; by default a log bucket is created.
	LogBucket pulumi.StringInput
	// DisableAccessLogging turns server access logging off.
	DisableAccessLogging bool
	// Production protects the bucket, its key and log bucket from deletion.
	Production bool
	// Tags are added to every resource.
	Tags map[string]string
}

// Bucket is the component.
type Bucket struct {
	pulumi.ResourceState

	BucketName pulumi.StringOutput
	ARN        pulumi.StringOutput
	KMSKeyARN  pulumi.StringOutput
}

var storageClasses = []string{"STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"}

var ruleID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,255}$`)

// Validate reports every invalid field, naming it and the fix.
func (a BucketArgs) Validate() error {
	var errs []error
	if a.Production && a.DisableVersioning {
		errs = append(errs, errors.New("storage: BucketArgs.DisableVersioning cannot be set with Production; production data keeps its versions"))
	}
	if a.Production && a.DisableAccessLogging {
		errs = append(errs, errors.New("storage: BucketArgs.DisableAccessLogging cannot be set with Production; production buckets keep access logs"))
	}
	seen := map[string]bool{}
	for i, r := range a.LifecycleRules {
		f := fmt.Sprintf("storage: BucketArgs.LifecycleRules[%d]", i)
		if !ruleID.MatchString(r.ID) || seen[r.ID] {
			errs = append(errs, fmt.Errorf("%s.ID %q must be a unique name of letters, digits, '.', '_' or '-'", f, r.ID))
		}
		seen[r.ID] = true
		if r.TransitionDays < 0 || r.ExpirationDays < 0 || r.NoncurrentExpirationDays < 0 {
			errs = append(errs, fmt.Errorf("%s: days must not be negative", f))
		}
		if r.TransitionDays == 0 && r.ExpirationDays == 0 && r.NoncurrentExpirationDays == 0 {
			errs = append(errs, fmt.Errorf("%s does nothing; set TransitionDays, ExpirationDays or NoncurrentExpirationDays", f))
		}
		if r.StorageClass != "" && !slices.Contains(storageClasses, r.StorageClass) {
			errs = append(errs, fmt.Errorf("%s.StorageClass %q is not a transition class; use one of %v", f, r.StorageClass, storageClasses))
		}
		if r.ExpirationDays > 0 && r.TransitionDays > 0 && r.ExpirationDays <= r.TransitionDays {
			errs = append(errs, fmt.Errorf("%s.ExpirationDays %d must come after TransitionDays %d", f, r.ExpirationDays, r.TransitionDays))
		}
	}
	return errors.Join(errs...)
}

func (a BucketArgs) rules() []LifecycleRule {
	if len(a.LifecycleRules) > 0 {
		return a.LifecycleRules
	}
	return []LifecycleRule{{ID: "expire-noncurrent-versions", NoncurrentExpirationDays: 90}}
}

// protection returns the options that keep production data from deletion.
func protection(production bool) []pulumi.ResourceOption {
	if !production {
		return nil
	}
	return []pulumi.ResourceOption{pulumi.Protect(true), pulumi.RetainOnDelete(true)}
}

func tagMap(name string, tags map[string]string) pulumi.StringMap {
	m := pulumi.StringMap{"Name": pulumi.String(name)}
	for k, v := range tags {
		m[k] = pulumi.String(v)
	}
	return m
}

// newKey creates a customer-managed KMS key with yearly rotation.
func newKey(ctx *pulumi.Context, name, description string, tags map[string]string, production bool, opts ...pulumi.ResourceOption) (*kms.Key, error) {
	window := 30
	if !production {
		window = 7
	}
	return kms.NewKey(ctx, name, &kms.KeyArgs{
		Description: pulumi.String(description), EnableKeyRotation: pulumi.Bool(true),
		DeletionWindowInDays: pulumi.Int(window), Tags: tagMap(name, tags),
	}, append(opts, protection(production)...)...)
}

// NewBucket registers the bucket. Invalid Args fail before any resource is registered.
func NewBucket(ctx *pulumi.Context, name string, args BucketArgs, opts ...pulumi.ResourceOption) (*Bucket, error) {
	if err := args.Validate(); err != nil {
		return nil, err
	}
	b := &Bucket{}
	if err := ctx.RegisterComponentResource(BucketType, name, b, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(b)
	keep := append([]pulumi.ResourceOption{child}, protection(args.Production)...)

	keyARN := args.KMSKeyARN
	if keyARN == nil {
		key, err := newKey(ctx, name, "Slipway bucket "+name, args.Tags, args.Production, child)
		if err != nil {
			return nil, err
		}
		keyARN = key.Arn
	}
	bucket, err := s3.NewBucketV2(ctx, name, &s3.BucketV2Args{BucketPrefix: pulumi.String(prefix(name)), Tags: tagMap(name, args.Tags)}, keep...)
	if err != nil {
		return nil, err
	}
	if err := secureBucket(ctx, name, bucket, &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
		SseAlgorithm: pulumi.String("aws:kms"), KmsMasterKeyId: keyARN}, child); err != nil {
		return nil, err
	}
	status := "Enabled"
	if args.DisableVersioning {
		status = "Suspended"
	}
	if _, err := s3.NewBucketVersioningV2(ctx, name, &s3.BucketVersioningV2Args{Bucket: bucket.ID(),
		VersioningConfiguration: &s3.BucketVersioningV2VersioningConfigurationArgs{Status: pulumi.String(status)}}, child); err != nil {
		return nil, err
	}
	var rules s3.BucketLifecycleConfigurationV2RuleArray
	for _, r := range args.rules() {
		rule := &s3.BucketLifecycleConfigurationV2RuleArgs{
			Id: pulumi.String(r.ID), Status: pulumi.String("Enabled"),
			Filter: &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String(r.Prefix)},
			AbortIncompleteMultipartUpload: &s3.BucketLifecycleConfigurationV2RuleAbortIncompleteMultipartUploadArgs{
				DaysAfterInitiation: pulumi.Int(7)},
		}
		if r.TransitionDays > 0 {
			class := r.StorageClass
			if class == "" {
				class = "STANDARD_IA"
			}
			rule.Transitions = s3.BucketLifecycleConfigurationV2RuleTransitionArray{&s3.BucketLifecycleConfigurationV2RuleTransitionArgs{
				Days: pulumi.Int(r.TransitionDays), StorageClass: pulumi.String(class)}}
		}
		if r.ExpirationDays > 0 {
			rule.Expiration = &s3.BucketLifecycleConfigurationV2RuleExpirationArgs{Days: pulumi.Int(r.ExpirationDays)}
		}
		if r.NoncurrentExpirationDays > 0 {
			rule.NoncurrentVersionExpiration = &s3.BucketLifecycleConfigurationV2RuleNoncurrentVersionExpirationArgs{
				NoncurrentDays: pulumi.Int(r.NoncurrentExpirationDays)}
		}
		rules = append(rules, rule)
	}
	if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, name, &s3.BucketLifecycleConfigurationV2Args{Bucket: bucket.ID(), Rules: rules}, child); err != nil {
		return nil, err
	}
	if !args.DisableAccessLogging {
		target := args.LogBucket
		if target == nil {
			logTags := tagMap(name+"-logs", args.Tags)
			logTags[LogBucketTag] = pulumi.String("access-logs")
			logs, err := s3.NewBucketV2(ctx, name+"-logs", &s3.BucketV2Args{BucketPrefix: pulumi.String(prefix(name + "-logs")),
				Tags: logTags}, keep...)
			if err != nil {
				return nil, err
			}
			// Server access logs can only be written to SSE-S3 buckets.
			if err := secureBucket(ctx, name+"-logs", logs, &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
				SseAlgorithm: pulumi.String("AES256")}, child); err != nil {
				return nil, err
			}
			if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, name+"-logs", &s3.BucketLifecycleConfigurationV2Args{Bucket: logs.ID(),
				Rules: s3.BucketLifecycleConfigurationV2RuleArray{&s3.BucketLifecycleConfigurationV2RuleArgs{
					Id: pulumi.String("expire-logs"), Status: pulumi.String("Enabled"),
					Filter:     &s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")},
					Expiration: &s3.BucketLifecycleConfigurationV2RuleExpirationArgs{Days: pulumi.Int(365)}}}}, child); err != nil {
				return nil, err
			}
			target = logs.ID()
		}
		if _, err := s3.NewBucketLoggingV2(ctx, name, &s3.BucketLoggingV2Args{Bucket: bucket.ID(), TargetBucket: target,
			TargetPrefix: pulumi.String("s3/" + name + "/")}, child); err != nil {
			return nil, err
		}
	}
	b.BucketName = bucket.Bucket
	b.ARN = bucket.Arn
	b.KMSKeyARN = keyARN.ToStringOutput()
	if err := ctx.RegisterResourceOutputs(b, pulumi.Map{"bucket": b.BucketName, "arn": b.ARN, "kmsKeyArn": b.KMSKeyARN}); err != nil {
		return nil, err
	}
	return b, nil
}

// secureBucket adds encryption, the public access block, owner-enforced
// ownership and a policy that denies requests without TLS.
func secureBucket(ctx *pulumi.Context, name string, bucket *s3.BucketV2,
	sse *s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs, child pulumi.ResourceOption) error {
	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, name, &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{&s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			ApplyServerSideEncryptionByDefault: sse, BucketKeyEnabled: pulumi.Bool(true)}},
	}, child); err != nil {
		return err
	}
	pab, err := s3.NewBucketPublicAccessBlock(ctx, name, &s3.BucketPublicAccessBlockArgs{Bucket: bucket.ID(),
		BlockPublicAcls: pulumi.Bool(true), BlockPublicPolicy: pulumi.Bool(true), IgnorePublicAcls: pulumi.Bool(true),
		RestrictPublicBuckets: pulumi.Bool(true)}, child)
	if err != nil {
		return err
	}
	if _, err := s3.NewBucketOwnershipControls(ctx, name, &s3.BucketOwnershipControlsArgs{Bucket: bucket.ID(),
		Rule: &s3.BucketOwnershipControlsRuleArgs{ObjectOwnership: pulumi.String("BucketOwnerEnforced")}}, child); err != nil {
		return err
	}
	policy := bucket.Arn.ApplyT(func(arn string) (string, error) { return denyInsecureTransport(arn) }).(pulumi.StringOutput)
	_, err = s3.NewBucketPolicy(ctx, name, &s3.BucketPolicyArgs{Bucket: bucket.ID(), Policy: policy}, child, pulumi.DependsOn([]pulumi.Resource{pab}))
	return err
}

// denyInsecureTransport returns a bucket policy that denies every request made without TLS.
func denyInsecureTransport(arn string) (string, error) {
	b, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
			"Resource":  []string{arn, arn + "/*"},
			"Condition": map[string]any{"Bool": map[string]string{"aws:SecureTransport": "false"}},
		}},
	})
	return string(b), err
}

// prefix turns a logical name into a valid bucket name prefix.
func prefix(name string) string {
	out := make([]byte, 0, len(name)+1)
	for _, c := range []byte(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			out = append(out, c)
		case c >= 'A' && c <= 'Z':
			out = append(out, c+'a'-'A')
		default:
			out = append(out, '-')
		}
	}
	if len(out) > 36 {
		out = out[:36]
	}
	return string(out) + "-"
}
