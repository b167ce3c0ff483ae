package web

import (
	"strings"
	"testing"
)

// TestLifecycleRoutes: restart, deploy (PUT) and delete with purge answer
// as the API contract says, with the statuses and messages a user acts on.
func TestLifecycleRoutes(t *testing.T) {
	ts := serverWithJob(t, e2eJob)
	base := ts.URL + "/api/v1/jobs/views"
	check := func(method, url, body string, code int, want string) string {
		t.Helper()
		got, b := callInto(t, method, url, body, nil)
		if got != code || !strings.Contains(b, want) {
			t.Fatalf("%s %s %s: %d %s, want %d with %s", method, url, body, got, b, code, want)
		}
		return b
	}
	check("POST", base+"/restart", `{"checkpoint":"1"}`, 409, "stop it first")
	check("POST", base+"/restart", `{}`, 400, `"field":"checkpoint"`)
	check("POST", base+"/restart", `{"checkpoint":"1","savepoint":"x"}`, 400, "exactly one")
	// A restart's body is read as every other JSON body is: unknown
	// fields, bad JSON and an oversized body are refused with what is
	// wrong, and what the body should be.
	check("POST", base+"/restart", `{"checkpont":"1"}`, 400, `"code":"invalid_json","message":"unknown field \"checkpont\" in the request body: the body is {\"checkpoint\": \"EPOCH\"} or {\"savepoint\": \"NAME\"}","field":"checkpont"`)
	check("POST", base+"/restart", `{"checkpoint":`, 400, `"code":"invalid_json"`)
	check("POST", base+"/restart", `{"from":"beginning"}`, 400, `"code":"invalid_argument","message":"\"from\" restarts a job on Kafka workers`)
	if got, b := callInto(t, "POST", base+"/restart", `{"savepoint":"`+strings.Repeat("x", smallBody)+`"}`, nil); got != 413 || !strings.Contains(b, `"code":"body_too_large"`) {
		t.Fatalf("restart with a body over %d bytes: %d %s, want 413 body_too_large", smallBody, got, b)
	}
	check("DELETE", base+"?purge=true", "", 409, "stop it first")
	check("DELETE", base+"?purge=maybe", "", 400, `"field":"purge"`)

	renamed := strings.Replace(e2eJob, "id: per-page", "id: by-page", 1)
	check("PUT", base, renamed, 409, "from=none")
	check("PUT", base+"?from=later", renamed, 400, `"field":"from"`)
	check("PUT", base, strings.Replace(e2eJob, "name: views", "name: other", 1), 400, `"field":"name"`)
	check("PUT", base, "name: views\nsource: {stream: clicks}\noperators:\n  - id: m\n    map: \"r =>\"\n", 400, `"line":5`)
	check("PUT", base, strings.Replace(e2eJob, "tumbling: 10s", "tumbling: 20s", 1), 200, `"savepoint":"views-`)
	check("PUT", base+"?from=none", renamed, 200, `"state":"running"`)
	check("GET", base, "", 200, "by-page")

	// Stop with a savepoint, then restart from it, then delete.
	b := check("DELETE", base+"?savepoint=true", "", 200, `"savepoint":{"name":"`)
	name := b[strings.Index(b, `"savepoint":{"name":"`)+len(`"savepoint":{"name":"`):]
	name = name[:strings.IndexByte(name, '"')]
	check("POST", base+"/restart", `{"savepoint":"nope"}`, 404, "there is no savepoint named nope")
	if _, b := callInto(t, "POST", base+"/restart", `{"savepoint":"nope"}`, nil); strings.Contains(b, "/savepoints/nope") {
		t.Fatalf("a restart from a missing savepoint told the server's path: %s", b)
	}
	check("POST", base+"/restart", `{"savepoint":"`+name+`"}`, 200, `"state":"running"`)
	check("DELETE", base, "", 200, `"state":"stopped"`)
	check("POST", base+"/restart", `{"checkpoint":"999"}`, 404, `"field":"checkpoint"`)
	if _, b := callInto(t, "POST", base+"/restart", `{"checkpoint":"999"}`, nil); !strings.Contains(b, "has no complete checkpoint 999 (GET /api/v1/jobs/") || strings.Contains(b, "/state") {
		t.Fatalf("a restart from a missing checkpoint: %s; want it named, and not the server's path", b)
	}
	check("DELETE", base+"?purge=true", "", 200, `"deleted":true`)
	if b := check("GET", base, "", 404, "not found"); strings.Contains(b, `"message":"jobs: `) {
		t.Fatalf("the message keeps the Go package prefix: %s", b)
	}
}
