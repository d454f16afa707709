package awskms

import (
	"fmt"
	"strings"
)

// ARN is a parsed AWS KMS ARN: arn:PARTITION:kms:REGION:ACCOUNT:TYPE/ID.
type ARN struct {
	// Partition ("aws", "aws-cn", …), Region and Account are the ARN's
	// fields of those names, never empty.
	Partition, Region, Account string
	// ResourceType is "key" or "alias".
	ResourceType string
	// ResourceID is the key id, or the alias name without "alias/".
	ResourceID string
}

// ParseARN parses a KMS key or alias ARN, as the ESDK validates them: every
// part present, service "kms", resource type key or alias.
func ParseARN(s string) (*ARN, error) {
	a, err := parseARN(s)
	if err != nil {
		return nil, fmt.Errorf("awskms: %w", err)
	}
	return a, nil
}

// parseARN is ParseARN with errors that do not say "awskms: ", for the
// functions of this package that add it with more context.
func parseARN(s string) (*ARN, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 6 || parts[0] != "arn" {
		return nil, fmt.Errorf("%q is not an ARN", s)
	}
	a := &ARN{Partition: parts[1], Region: parts[3], Account: parts[4]}
	if a.Partition == "" || parts[2] != "kms" || a.Region == "" || a.Account == "" {
		return nil, fmt.Errorf("%q is not a KMS ARN (want arn:PARTITION:kms:REGION:ACCOUNT:key/ID)", s)
	}
	typ, id, ok := strings.Cut(parts[5], "/")
	if !ok || id == "" || (typ != "key" && typ != "alias") {
		return nil, fmt.Errorf("%q is not a KMS key or alias ARN", s)
	}
	a.ResourceType, a.ResourceID = typ, id
	return a, nil
}

// String returns the ARN in its canonical form.
func (a *ARN) String() string {
	return "arn:" + a.Partition + ":kms:" + a.Region + ":" + a.Account + ":" + a.ResourceType + "/" + a.ResourceID
}
