package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// remoteEnviron is the environment of an envelope process that uses the
// server p as principal (id, secret).
func remoteEnviron(t *testing.T, p *serveProc, id, secret string) []string {
	home := t.TempDir()
	return append(serveEnviron(filepath.Join(home, "unused"), false),
		"ENVELOPE_KMS="+p.url, "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_REGION="+serveRegion,
		"AWS_CONFIG_FILE="+filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"))
}

// testRemoteKeyWithAlias: against a remote KMS, "keys create --alias" takes
// two calls; when the alias is refused, the new key is scheduled for
// deletion and the error says so, so that no key is left without its alias
// unnoticed. Processes racing to make alias/default on a remote KMS all
// succeed with one key, and the losers' keys are scheduled for deletion.
func testRemoteKeyWithAlias(t *testing.T, bin string) {
	policy := `{"principals": [
  {"name": "creator", "accessKeyId": "AKIDCREATORTEST00001", "secretAccessKey": "creator/secret/for/tests",
   "allow": [{"actions": ["kms:CreateKey", "kms:DescribeKey", "kms:ScheduleKeyDeletion"], "keys": ["*"]}]},
  {"name": "careless", "accessKeyId": "AKIDCARELESSTEST0001", "secretAccessKey": "careless/secret/for/tests",
   "allow": [{"actions": ["kms:CreateKey", "kms:DescribeKey"], "keys": ["*"]}]}]}`
	policyFile := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policyFile, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, bin, serveOpts{args: []string{"--policy", policyFile}})
	root := p.client(serveRoot)
	ctx := context.Background()
	keyID := regexp.MustCompile(`key ([0-9a-f-]{36}) was created`)

	t.Run("AliasRefused", func(t *testing.T) {
		r := runEnvelope(t, bin, remoteEnviron(t, p, "AKIDCREATORTEST00001", "creator/secret/for/tests"), "keys", "create", "--alias", "alias/refused")
		m := keyID.FindStringSubmatch(r.stderr)
		if r.code != 1 || m == nil || !strings.Contains(r.stderr, "but its alias alias/refused was not (AccessDeniedException") ||
			!strings.Contains(r.stderr, "the key was scheduled for deletion on "+time.Now().UTC().AddDate(0, 0, 7).Format("2006-01-02")) ||
			!strings.Contains(r.stderr, "hint: to keep the key, \"envelope keys cancel-deletion "+m[1]+"\"") {
			t.Fatalf("keys create --alias with the alias refused: %v", r)
		}
		d, err := root.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(m[1])})
		if err != nil || d.KeyMetadata.KeyState != types.KeyStatePendingDeletion || aws.ToInt32(d.KeyMetadata.PendingDeletionWindowInDays) != 7 {
			t.Errorf("the key left without its alias: %+v, %v; want it pending deletion in 7 days", d, err)
		}
	})
	t.Run("DeletionRefusedToo", func(t *testing.T) {
		r := runEnvelope(t, bin, remoteEnviron(t, p, "AKIDCARELESSTEST0001", "careless/secret/for/tests"), "keys", "create", "--alias", "alias/careless")
		m := keyID.FindStringSubmatch(r.stderr)
		if r.code != 1 || m == nil || !strings.Contains(r.stderr, "scheduling the key's deletion failed too (AccessDeniedException") ||
			!strings.Contains(r.stderr, "the key is left without its alias") ||
			!strings.Contains(r.stderr, "hint: delete the key with \"envelope keys schedule-deletion "+m[1]+"\"") {
			t.Fatalf("keys create --alias with the alias and the deletion refused: %v", r)
		}
	})
	t.Run("DefaultKeyRace", func(t *testing.T) {
		const procs = 6
		env := remoteEnviron(t, p, serveRootID, serveRootSecret)
		work := t.TempDir()
		results := make([]result, procs)
		var wg sync.WaitGroup
		for i := range procs {
			in := filepath.Join(work, fmt.Sprint("plain", i))
			if err := os.WriteFile(in, []byte(in), 0o600); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { results[i] = runEnvelope(t, bin, env, "encrypt", "-o", in+".esdk", in) })
		}
		wg.Wait()
		created := 0
		for _, r := range results {
			if r.code != 0 {
				t.Errorf("%v", r)
			}
			created += strings.Count(r.stderr, "envelope: created the default key alias/default ")
		}
		if created != 1 {
			t.Errorf("%d processes said they created alias/default, want 1", created)
		}
		for i := range procs {
			in := filepath.Join(work, fmt.Sprint("plain", i))
			if r := runEnvelope(t, bin, env, "decrypt", in+".esdk"); r.code != 0 || r.stdout != in {
				t.Errorf("message %d: %v", i, r)
			}
		}
		def, err := root.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/default")})
		if err != nil {
			t.Fatal(err)
		}
		keys, err := root.ListKeys(ctx, &kms.ListKeysInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys.Keys {
			d, err := root.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyId})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(d.KeyMetadata.Description) != defaultKeyDescription || aws.ToString(k.KeyId) == aws.ToString(def.KeyMetadata.KeyId) {
				continue
			}
			if d.KeyMetadata.KeyState != types.KeyStatePendingDeletion {
				t.Errorf("a losing default key %s is %s, want PendingDeletion", aws.ToString(k.KeyId), d.KeyMetadata.KeyState)
			}
		}
	})
}
