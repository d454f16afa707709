package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKeysListingEndsWithoutMarker runs the keys commands that list pages
// (list, alias list, rotation list, tags) against a remote KMS that marks
// every page truncated but gives no marker for the next: a listing must
// end after that page, not ask for the first page again for ever.
func TestKeysListingEndsWithoutMarker(t *testing.T) {
	const keyID = "1234abcd-12ab-34cd-56ef-1234567890ab"
	const arn = "arn:aws:kms:us-east-1:111122223333:key/" + keyID
	answers := map[string]string{
		"DescribeKey": `{"KeyMetadata": {"KeyId": "` + keyID + `", "Arn": "` + arn + `", "KeySpec": "SYMMETRIC_DEFAULT",
			"KeyUsage": "ENCRYPT_DECRYPT", "KeyState": "Enabled", "Enabled": true, "CreationDate": 1.7e9}}`,
		"ListKeys":         `{"Keys": [{"KeyId": "` + keyID + `", "KeyArn": "` + arn + `"}], "Truncated": true}`,
		"ListAliases":      `{"Aliases": [{"AliasName": "alias/app", "TargetKeyId": "` + keyID + `"}], "Truncated": true}`,
		"ListKeyRotations": `{"Rotations": [{"KeyId": "` + arn + `", "RotationDate": 1.7e9, "RotationType": "ON_DEMAND"}], "Truncated": true}`,
		"ListResourceTags": `{"Tags": [{"TagKey": "team", "TagValue": "core"}], "Truncated": true}`,
	}
	var mu sync.Mutex
	calls := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
		mu.Lock()
		calls[op]++
		mu.Unlock()
		answer, ok := answers[op]
		if !ok {
			http.Error(w, `{"__type": "UnsupportedOperationException"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	home := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDLISTINGTEST00001", "AWS_SECRET_ACCESS_KEY": "listing/secret/for/tests", "AWS_REGION": "us-east-1",
		"AWS_CONFIG_FILE": filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none"),
		"ENVELOPE_KMS": "", "ENVELOPE_HOME": filepath.Join(home, "envhome"),
	} {
		t.Setenv(k, v)
	}
	for _, tc := range []struct {
		args []string
		op   string // the list operation
		want string // in the output
	}{
		{[]string{"list"}, "ListKeys", keyID},
		{[]string{"alias", "list"}, "ListAliases", "alias/app"},
		{[]string{"rotation", "list", keyID}, "ListKeyRotations", "ON_DEMAND"},
		{[]string{"tags", keyID}, "ListResourceTags", "team"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			mu.Lock()
			clear(calls)
			mu.Unlock()
			// The bound turns the endless listing into a failure.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			c := &cli{ctx: ctx, stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
			args := append([]string{"keys", "--kms", srv.URL}, tc.args...)
			if code := c.main(args); code != 0 {
				t.Fatalf("envelope %s = %d, stderr %q; want 0", strings.Join(args, " "), code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.want) {
				t.Errorf("envelope %s printed %q; want it to show %q", strings.Join(args, " "), stdout.String(), tc.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls[tc.op] != 1 {
				t.Errorf("envelope %s called %s %d times; want once: the page had no marker for a next one", strings.Join(args, " "), tc.op, calls[tc.op])
			}
		})
	}
}
