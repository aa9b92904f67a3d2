package retention_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/schedulerd/schedulerd/internal/s3test"
	"github.com/schedulerd/schedulerd/retention"
)

// useEnvCredentials points the AWS default chain at the test server's keys only, so that
// it reads no file and sends no request to an instance metadata service.
func useEnvCredentials(t *testing.T, server *s3test.Server) {
	t.Setenv("AWS_ACCESS_KEY_ID", server.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", server.SecretAccessKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
}

func TestNewS3ClientFromDefaultChain(t *testing.T) {
	server := s3test.Shared(t)
	_, bucket := s3test.NewBucket(t)
	useEnvCredentials(t, server)

	client, err := retention.NewS3Client(context.Background(), retention.S3Config{
		Endpoint: server.Endpoint, Region: server.Region, PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("probe"), Body: strings.NewReader("x"),
	})
	if err != nil {
		t.Errorf("put through the client: %v", err)
	}
}

func TestNewS3ClientNeedsRegion(t *testing.T) {
	useEnvCredentials(t, s3test.Shared(t))
	_, err := retention.NewS3Client(context.Background(), retention.S3Config{Endpoint: "http://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "no S3 region") {
		t.Errorf("error %v, want one about the missing region", err)
	}
}
