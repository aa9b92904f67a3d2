// Package s3uri splits the s3://BUCKET/KEY URIs that artifact rows store. The API checks
// these URIs as written, and retention and the workflows read the same bytes: the key is
// taken literally, so "%", "?", "#" and ".." are part of it, not URL syntax. Decoding
// s3://b/x%2Fy/ as a URL would name the objects under "x/y/" instead of "x%2Fy/".
package s3uri

import (
	"fmt"
	"strings"
)

// Split returns the bucket and the key of uri, split at the first slash after the bucket.
func Split(uri string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	bucket, key, found := strings.Cut(rest, "/")
	if !ok || !found || bucket == "" || key == "" {
		return "", "", fmt.Errorf("%q is not s3://BUCKET/KEY", uri)
	}
	return bucket, key, nil
}
