package retention

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/schedulerd/schedulerd/internal/s3uri"
)

// ObjectStore is the part of *s3.Client that retention uses.
type ObjectStore interface {
	DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, opts ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// S3Config is the address and signing region of S3. Credentials come from the AWS SDK's default chain:
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the shared config and credentials files
// (AWS_PROFILE), web identity, then the container or EC2 instance role.
type S3Config struct {
	// Endpoint replaces AWS's endpoints, for S3-compatible servers such as versitygw or
	// MinIO: http://127.0.0.1:7070. Empty uses AWS (or AWS_ENDPOINT_URL_S3 when set).
	Endpoint string
	// Region is the signing region. Empty takes it from AWS_REGION or the profile.
	Region string
	// PathStyle puts the bucket in the path (host/bucket/key) instead of the host name,
	// as most S3-compatible servers need.
	PathStyle bool
}

// NewS3Client builds an S3 client from cfg and the default AWS configuration chain.
func NewS3Client(ctx context.Context, cfg S3Config) (*s3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("no S3 region: set SCHEDULERD_S3_REGION or AWS_REGION")
	}

	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	}), nil
}

// parseURI splits a checkpoint's s3://bucket/key as written (s3uri.Split). A key ending in
// "/" names every object under it, as for a checkpoint saved as a directory of shards.
func parseURI(uri string) (bucket, key string, err error) {
	bucket, key, err = s3uri.Split(uri)
	if err != nil {
		return "", "", fmt.Errorf("checkpoint URI: %w", err)
	}
	return bucket, key, nil
}

// MaxDeleteKeys is S3's limit of keys in one DeleteObjects request.
const MaxDeleteKeys = 1000

// deleteKeys deletes keys from bucket, up to batch keys a request. It returns the keys S3
// confirmed, a key already missing included, and the error code of each key S3 refused. An
// error means a request failed as a whole; keys confirmed before it are still returned.
func deleteKeys(ctx context.Context, store ObjectStore, bucket string, keys []string, batch int) (done map[string]bool, refused map[string]string, err error) {
	done = make(map[string]bool, len(keys))
	refused = make(map[string]string)
	for start := 0; start < len(keys); start += batch {
		ids := make([]types.ObjectIdentifier, 0, batch)
		for _, k := range keys[start:min(start+batch, len(keys))] {
			ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
		}

		out, err := store.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: ids},
		})
		if err != nil {
			return done, refused, fmt.Errorf("delete %d objects from bucket %s: %w", len(ids), bucket, err)
		}
		for _, d := range out.Deleted {
			done[aws.ToString(d.Key)] = true
		}
		for _, e := range out.Errors {
			if code := aws.ToString(e.Code); code == "NoSuchKey" {
				done[aws.ToString(e.Key)] = true
			} else {
				refused[aws.ToString(e.Key)] = code + ": " + aws.ToString(e.Message)
			}
		}
	}
	return done, refused, nil
}

// listPrefix returns every key under prefix, following pagination.
func listPrefix(ctx context.Context, store ObjectStore, bucket, prefix string) ([]string, error) {
	var keys []string
	paginator := s3.NewListObjectsV2Paginator(store, &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket),
		Prefix: aws.String(prefix),
	})
	for paginator.HasMorePages() {
		page, err := paginator.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list objects under s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}
