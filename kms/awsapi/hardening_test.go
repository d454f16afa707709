package awsapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// TestInsecureDevLoopbackHost: with InsecureDev, an unsigned request is
// root only if its Host header is a loopback name. A web page the browser
// was made to send to 127.0.0.1 by DNS rebinding carries its own host name
// in Host: it must not create or delete keys.
func TestInsecureDevLoopbackHost(t *testing.T) { bothFrontEnds(t, testInsecureDevLoopbackHost) }

func testInsecureDevLoopbackHost(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.InsecureDev = true })
	id := e.createKey("")
	for _, host := range []string{"evil.example", "evil.example:8500", "localhost.evil.example:8500",
		"127.0.0.1.evil.example", "192.0.2.1:8500", "[2001:db8::1]:8500", "0.0.0.0:8500", "10.0.0.1"} {
		for _, c := range []struct{ op, body string }{
			{"CreateKey", `{}`},
			{"ScheduleKeyDeletion", `{"KeyId":"` + id + `","PendingWindowInDays":7}`},
		} {
			r := e.request(c.op, []byte(c.body), signOpts{unsigned: true})
			r.Host = host
			resp := e.do(r)
			if resp.status == http.StatusOK {
				regression(t, "server.go authenticate accepts an unsigned %s as root with Host %q (DNS rebinding): %s", c.op, host, resp.body)
			}
			wantError(t, resp, CodeMissingAuthenticationToken)
			if !json.Valid(resp.body) {
				t.Errorf("answer %q is not JSON", resp.body)
			}
		}
	}
	var keys kms.ListKeysOutput
	e.root("ListKeys", kms.ListKeysInput{}, &keys)
	if len(keys.Keys) != 1 {
		t.Errorf("%d keys after the refused CreateKeys, want 1", len(keys.Keys))
	}
	var desc kms.DescribeKeyOutput
	e.root("DescribeKey", kms.DescribeKeyInput{KeyId: id}, &desc)
	if desc.KeyMetadata.KeyState != kms.StateEnabled {
		t.Errorf("key state %s after the refused ScheduleKeyDeletion, want Enabled", desc.KeyMetadata.KeyState)
	}
	for _, host := range []string{"localhost", "localhost:8500", "LocalHost:1", "127.0.0.1", "127.0.0.1:8500", "127.9.8.7:1", "[::1]:8500", "[::1]"} {
		r := e.request("ListKeys", []byte(`{}`), signOpts{unsigned: true})
		r.Host = host
		if resp := e.do(r); resp.status != http.StatusOK {
			t.Errorf("unsigned ListKeys with Host %q = %d %s, want 200", host, resp.status, resp.body)
		}
	}
}
