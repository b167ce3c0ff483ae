package testsrv

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestS3ProcessKeepsObjectsAcrossKill puts an object into versitygw, kills
// it with SIGKILL, starts it again and reads the object back.
func TestS3ProcessKeepsObjectsAcrossKill(t *testing.T) {
	p := StartS3(t, "bkt")
	ctx := context.Background()
	if _, err := p.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a/b.txt"),
		Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	p.Kill()
	p.Start()
	out, err := p.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	if string(b) != "hello" {
		t.Fatalf("read %q after restart", b)
	}
	if keys := p.Objects(t, "bkt", "a/"); len(keys) != 1 || keys[0] != "a/b.txt" {
		t.Fatalf("list = %v", keys)
	}
}
