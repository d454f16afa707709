package awsapi

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/envelopekms/envelope/internal/durable"
	"github.com/envelopekms/envelope/kms"
)

// Principal is a caller the server knows: an IAM user or role of the
// server's account, with an access key, its secret, and identity policies.
// The root principal (the account's root) may do everything.
type Principal struct {
	Name string `json:"name"`
	// ARN is the principal's ARN, arn:aws:iam::ACCOUNT:user/NAME or
	// …:role/NAME; "" stands for arn:aws:iam::ACCOUNT:user/ + Name.
	ARN             string `json:"arn,omitempty"`
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	// Allow entries are the policy file's first form of permissions; each
	// stands for identity policy statements (see [Server.SetPrincipals]).
	Allow []Grant `json:"allow"`
	// Policies are IAM identity policy documents by name.
	Policies map[string]json.RawMessage `json:"policies,omitempty"`
	// Root principals are allowed every action on every key.
	Root bool `json:"-"`

	caller kms.Caller // compiled by the server
}

// Grant allows some actions on some keys.
type Grant struct {
	// Actions are "kms:Operation" names; a trailing * matches any suffix
	// ("kms:GenerateDataKey*", "kms:*").
	Actions []string `json:"actions"`
	// Keys are key ids, key ARNs or alias names ("alias/app"), or "*" for
	// every key. Operations on no key (CreateKey, ListKeys, ListAliases,
	// GenerateRandom) need "*".
	Keys []string `json:"keys"`
}

// String names the principal without its secret.
func (p *Principal) String() string { return p.Name }

// PolicyFile is the document --policy reads:
//
//	{"principals": [
//	  {"name": "app", "accessKeyId": "AKIA…", "secretAccessKey": "…",
//	   "allow": [{"actions": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
//	              "keys": ["alias/app"]}]},
//	  {"name": "reader", "arn": "arn:aws:iam::111122223333:role/reader", "accessKeyId": "…", "secretAccessKey": "…",
//	   "policies": {"tenant-a": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
//	     "Action": "kms:Decrypt", "Resource": "*",
//	     "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "a"}}}]}}}]}
type PolicyFile struct {
	Principals []*Principal `json:"principals"`
}

// LoadPolicy reads and checks a policy file. It refuses a file that others
// can read, as it holds secrets.
func LoadPolicy(file string) (*PolicyFile, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("policy file: %v", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("policy file %s is readable by others (mode %04o) and holds secret keys; chmod 600 it", file, st.Mode().Perm())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("policy file: %v", err)
	}
	var p PolicyFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy file %s: %v", file, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("policy file %s: more than one JSON document", file)
	}
	seen := map[string]bool{}
	names := map[string]bool{"root": true}
	for i, pr := range p.Principals {
		switch {
		case pr.Name == "" || pr.AccessKeyID == "" || pr.SecretAccessKey == "":
			return nil, fmt.Errorf("policy file %s: principal %d needs name, accessKeyId and secretAccessKey", file, i+1)
		case seen[pr.AccessKeyID]:
			return nil, fmt.Errorf("policy file %s: access key %s appears twice", file, pr.AccessKeyID)
		case names[pr.Name]:
			return nil, fmt.Errorf("policy file %s: principal name %q is taken (names must be unique, and root is the root principal's)", file, pr.Name)
		}
		seen[pr.AccessKeyID], names[pr.Name] = true, true
		for _, g := range pr.Allow {
			for _, a := range g.Actions {
				if !strings.HasPrefix(a, "kms:") {
					return nil, fmt.Errorf("policy file %s: principal %q: action %q should start with \"kms:\"", file, pr.Name, a)
				}
			}
			if len(g.Keys) == 0 {
				return nil, fmt.Errorf("policy file %s: principal %q: a grant needs keys (use [\"*\"] for all)", file, pr.Name)
			}
		}
		for name, doc := range pr.Policies {
			if _, err := kms.ParseIdentityPolicy(name, string(doc)); err != nil {
				return nil, fmt.Errorf("policy file %s: principal %q: policy %q: %v", file, pr.Name, name, policyError(err))
			}
		}
	}
	return &p, nil
}

// RootCredentials are the root principal's access key and secret.
type RootCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// NewRootCredentials makes a random access key id (20 characters, "EVK"…)
// and secret (40 characters).
func NewRootCredentials() RootCredentials {
	const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	const any = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	pick := func(alphabet string, n int) string {
		b := make([]byte, n)
		rand.Read(b)
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		return string(b)
	}
	return RootCredentials{AccessKeyID: "EVK" + pick(upper, 17), SecretAccessKey: pick(any, 40)}
}

// LoadOrCreateRootCredentials reads root credentials from file, creating
// the file (mode 0600) with new ones if it does not exist. created reports
// the latter.
func LoadOrCreateRootCredentials(file string) (c RootCredentials, created bool, err error) {
	data, err := os.ReadFile(file)
	if err == nil {
		if err := json.Unmarshal(data, &c); err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return c, false, fmt.Errorf("root credentials file %s is damaged", file)
		}
		return c, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return c, false, err
	}
	c = NewRootCredentials()
	data, _ = json.MarshalIndent(c, "", "  ")
	if err := durable.WriteNew(file, append(data, '\n'), 0o600); durable.CreateFailed(err) {
		return c, false, fmt.Errorf("creating root credentials: %v", err)
	} else if err != nil {
		return c, false, fmt.Errorf("writing root credentials: %v", err)
	}
	return c, true, nil
}
