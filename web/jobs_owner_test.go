package web

import (
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/jobs"
)

// TestManagedJob: a job the server manages (a Kinesis channel's delivery
// job) is shown with its owner and can be stopped over the REST API, but
// a submit with replace=true, a deploy and a purge answer 409 managed and
// leave it as it was.
func TestManagedJob(t *testing.T) {
	ts, mgr := jobsServer(t)
	const owner = "arn:aws:kinesis:us-east-1:000000000000:channel/c"
	if _, err := mgr.SubmitWith([]byte(e2eJob), jobs.SubmitOptions{Owner: owner}); err != nil {
		t.Fatal(err)
	}
	base := ts.URL + "/api/v1/jobs"
	check := func(method, url, body string, code int, want string) {
		t.Helper()
		got, b := callInto(t, method, url, body, nil)
		if got != code || !strings.Contains(b, want) {
			t.Fatalf("%s %s: %d %s, want %d with %s", method, url, got, b, code, want)
		}
	}
	check("GET", base+"/views", "", 200, `"owner":"`+owner+`"`)
	check("DELETE", base+"/views", "", 200, `"state":"stopped"`)
	check("POST", base+"?replace=true", e2eJob, 409, `"code":"managed","message":"job \"views\" is managed by `+owner)
	check("PUT", base+"/views?from=none", e2eJob, 409, `"code":"managed"`)
	check("DELETE", base+"/views?purge=true", "", 409, `"code":"managed"`)
	check("GET", base+"/views", "", 200, `"owner":"`+owner+`"`)
	check("POST", base+"/views/resume", "", 200, `"state":"running"`)
}
