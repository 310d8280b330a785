package storage_test

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/slipwayhq/slipway/components/storage"
	"github.com/slipwayhq/slipway/integration/mocktest"
)

// A production bucket: protected, with its own rotating key and a log bucket.
func ExampleNewBucket() {
	g, _ := mocktest.Run(func(ctx *pulumi.Context) error {
		_, err := storage.NewBucket(ctx, "ledger", storage.BucketArgs{Production: true})
		return err
	}, nil)
	for _, b := range g.OfType("aws:s3/bucketV2:BucketV2") {
		fmt.Println(b.Name, "protected:", b.Protect)
	}
	fmt.Println("KMS keys:", g.Count("aws:kms/key:Key"))
	// Unordered output:
	// ledger protected: true
	// ledger-logs protected: true
	// KMS keys: 1
}
