package awsclient_test

import (
	"context"
	"fmt"
	"log"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsclient"
)

// A client of an envelope server, signing with the root credentials the
// server generated. Errors the server answers with are *kms.Error, exactly
// as from the embedded KMS.
func ExampleNewEndpoint() {
	ctx := context.Background()
	c, err := awsclient.NewEndpoint(ctx, "http://127.0.0.1:8500",
		awsclient.WithCredentials("AKIAEXAMPLE", "secret-from-envelope-serve"))
	if err != nil {
		log.Fatal(err)
	}
	out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: "alias/default"})
	switch {
	case kms.CodeOf(err) == kms.CodeNotFound:
		fmt.Println("no key alias/default on the server")
	case err != nil:
		log.Fatal(err) // for example: awsclient: DescribeKey on http://127.0.0.1:8500: request send failed, … connection refused
	default:
		fmt.Println(out.KeyMetadata.Arn)
	}
}

// A client of AWS KMS itself, configured like the AWS CLI (AWS_REGION,
// AWS_PROFILE, ~/.aws/config, …).
func ExampleNewAWS() {
	ctx := context.Background()
	c, err := awsclient.NewAWS(ctx)
	if err != nil {
		log.Fatal(err)
	}
	var api kms.API = c // the same interface as the embedded KMS
	_ = api
}
