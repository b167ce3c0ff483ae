package testsrv

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnel-dev/runnel/internal/flock"
	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// VersityGW is the version of github.com/versity/versitygw the S3 tests
// run; internal/testsrv/versitygw is a module of its own that pins it, so
// its many dependencies stay out of Runnel's go.mod.
const VersityGW = "v1.8.0"

// S3 test credentials: the root user of the throwaway gateway.
const (
	S3AccessKey = "runnel-test"
	S3SecretKey = "runnel-test-secret"
	S3Region    = "us-east-1"
)

// S3Process is versitygw, an S3 gateway, serving a temporary directory
// through its posix backend (every object a file), as its own process so
// a test may kill it with SIGKILL and start it again on the same
// directory and port.
type S3Process struct {
	process
	t        testing.TB
	Endpoint string // http://127.0.0.1:PORT
	addr     string
	dir      string
}

// VersityGWBinary returns versitygw, building it on first use into the
// user's cache directory (shared by test processes and runs: the build
// takes minutes; .ci/run builds it ahead).
func VersityGWBinary(t testing.TB) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("versitygw: no cache directory: %v", err)
	}
	bin := filepath.Join(cache, "runnel-testsrv", "versitygw-"+VersityGW)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	// One build at a time across test processes.
	lock, err := os.OpenFile(bin+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := flock.Lock(lock); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	_, self, _, _ := goruntime.Caller(0)
	cmd := exec.Command("go", "build", "-o", bin+".tmp", "github.com/versity/versitygw/cmd/versitygw")
	cmd.Dir = filepath.Join(filepath.Dir(self), "versitygw")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build versitygw in %s: %v\n%s", cmd.Dir, err, out)
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// StartS3 starts versitygw on a free loopback port, serving a fresh
// temporary directory, and creates the given buckets. It is killed when
// the test ends.
func StartS3(t testing.TB, buckets ...string) *S3Process {
	t.Helper()
	VersityGWBinary(t)
	p := &S3Process{t: t, addr: testbin.FreeAddr(t), dir: t.TempDir()}
	p.Endpoint = "http://" + p.addr
	p.Start()
	t.Cleanup(p.Kill)
	for _, b := range buckets {
		if _, err := p.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("create bucket %s: %v", b, err)
		}
	}
	return p
}

// Start starts the gateway (again) and waits until it accepts
// connections.
func (p *S3Process) Start() {
	p.t.Helper()
	p.cmd = exec.Command(VersityGWBinary(p.t), "--port", p.addr, "--access", S3AccessKey, "--secret", S3SecretKey,
		"--region", S3Region, "--quiet", "posix", p.dir)
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	var err error
	if !testutil.Within(30*time.Second, func() bool {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", p.addr, time.Second); err == nil {
			c.Close()
		}
		return err == nil
	}) {
		p.Kill()
		p.t.Fatalf("versitygw did not listen on %s within 30s: %v", p.addr, err)
	}
}

// Env is the environment that gives a process (the runnel binary, say)
// the gateway's credentials through the AWS default chain.
func (p *S3Process) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + S3AccessKey, "AWS_SECRET_ACCESS_KEY=" + S3SecretKey, "AWS_REGION=" + S3Region,
		"AWS_EC2_METADATA_DISABLED=true"}
}

// Client is an S3 client of the gateway, path-style, with its
// credentials.
func (p *S3Process) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       S3Region,
		BaseEndpoint: aws.String(p.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(S3AccessKey, S3SecretKey, ""),
	})
}

// Objects lists the keys under prefix in bucket, in order.
func (p *S3Process) Objects(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	pg := s3.NewListObjectsV2Paginator(p.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// Get returns an object's body.
func (p *S3Process) Get(t testing.TB, bucket, key string) []byte {
	t.Helper()
	out, err := p.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	return b
}

// String names the gateway in test logs.
func (p *S3Process) String() string { return fmt.Sprintf("versitygw %s at %s", VersityGW, p.Endpoint) }
