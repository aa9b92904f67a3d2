package s3test_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/schedulerd/schedulerd/internal/s3test"
)

func TestMain(m *testing.M) { s3test.Main(m, nil) }

func put(t *testing.T, client *s3.Client, bucket, key, body string) {
	t.Helper()
	_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body),
		Metadata: map[string]string{"step": "100"},
	})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func TestPutGetWithMetadata(t *testing.T) {
	ctx := context.Background()
	client, bucket := s3test.NewBucket(t)
	put(t, client, bucket, "runs/r1/step-100/model.pt", "weights")

	got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("runs/r1/step-100/model.pt")})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	body, err := io.ReadAll(got.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "weights" {
		t.Errorf("body %q, want %q", body, "weights")
	}
	if got.Metadata["step"] != "100" {
		t.Errorf("metadata %v, want step=100", got.Metadata)
	}
}

func TestListPagesAndDeleteObjects(t *testing.T) {
	ctx := context.Background()
	client, bucket := s3test.NewBucket(t)
	var ids []types.ObjectIdentifier
	for i := range 25 {
		key := fmt.Sprintf("ckpt/%02d", i)
		put(t, client, bucket, key, "x")
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(key)})
	}

	keys, pages := 0, 0
	paginator := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket), Prefix: aws.String("ckpt/"), MaxKeys: aws.Int32(10),
	})
	for paginator.HasMorePages() {
		page, err := paginator.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keys += len(page.Contents)
		pages++
	}
	if keys != 25 || pages != 3 {
		t.Errorf("listed %d keys in %d pages, want 25 in 3", keys, pages)
	}

	// A missing key in DeleteObjects is not an error in S3.
	ids = append(ids, types.ObjectIdentifier{Key: aws.String("ckpt/missing")})
	out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) != 0 || len(out.Deleted) != 26 {
		t.Errorf("deleted %d with %d errors, want 26 and none", len(out.Deleted), len(out.Errors))
	}
}

func TestHaltAndRestart(t *testing.T) {
	ctx := context.Background()
	server := s3test.Shared(t)
	client, bucket := s3test.NewBucket(t)
	put(t, client, bucket, "kept", "x")

	if err := server.Halt(); err != nil {
		t.Fatal(err)
	}
	_, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("kept")})
	if err == nil {
		t.Fatal("HeadObject succeeded on a halted server")
	}

	if err := server.Restart(); err != nil {
		t.Fatal(err)
	}
	_, err = client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("kept")})
	var notFound *types.NotFound
	if errors.As(err, &notFound) || err != nil {
		t.Errorf("after restart: HeadObject error %v, want the object back", err)
	}
}
