package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/spf13/pflag"
)

const keysHelp = `Usage: envelope keys COMMAND [flags] [ARGS]

Manage the keys of the embedded keystore ($ENVELOPE_HOME, default
~/.local/share/envelope), or of the KMS named by --kms URL / $ENVELOPE_KMS.
KEY is alias/NAME, a key id or a key ARN. Every command prints a table or a
line for people, and JSON with --json.

Commands:
  create [--spec SPEC] [--alias alias/NAME] [--description TEXT] [--tag name=value]...
                              create a key; SPEC is SYMMETRIC_DEFAULT (default),
                              RSA_2048, RSA_3072 or RSA_4096. The key and its
                              alias are made in one step (with --kms, in two
                              calls: if the alias fails, the new key is
                              scheduled for deletion in 7 days)
  list                        list keys with their aliases and states
  describe KEY                show a key's metadata
  enable KEY | disable KEY    allow or refuse the key's use
  rotate KEY                  rotate the key's material now (symmetric keys;
                              earlier versions still decrypt)
  rotation enable KEY [--period DAYS]   rotate automatically every DAYS (90-2560, default 365)
  rotation disable KEY        stop automatic rotation
  rotation status KEY         show whether and when the key rotates
  rotation list KEY           list the key's rotations
  schedule-deletion KEY [--days N]      make the key unusable now and destroy it
                              after N days (7-30, default 30)
  cancel-deletion KEY         cancel a scheduled deletion (the key comes back disabled)
  alias create alias/NAME KEY | alias update alias/NAME KEY | alias delete alias/NAME
  alias list [--key KEY]      manage and list aliases
  public-key KEY [-o PEM]     write an RSA key's public key (SPKI PEM)
  tag KEY name=value...       set tags
  untag KEY name...           remove tags
  tags KEY                    list tags

Flags:
%s
Examples:
  envelope keys create --alias alias/app --description "app data"
  envelope keys rotation enable alias/app --period 180
  envelope keys create --spec RSA_3072 --alias alias/ops
  envelope keys public-key alias/ops -o ops.pub.pem
  envelope keys disable alias/app
  envelope keys list --json | jq '.[].KeyId'
`

// keysFlags are the flags of every keys subcommand; each uses its own.
type keysFlags struct {
	json        bool
	spec        string
	alias       string
	description string
	tags        []string
	period      int
	days        int
	output      string
	key         string
}

func (c *cli) keys(args []string) error {
	var f keysFlags
	fs := c.newFlagSet("keys")
	fs.SetInterspersed(true)
	fs.BoolVar(&f.json, "json", false, "print JSON (the KMS API's shapes) instead of text")
	fs.StringVar(&f.spec, "spec", kms.SpecSymmetricDefault, "create: key `SPEC`: SYMMETRIC_DEFAULT, RSA_2048, RSA_3072 or RSA_4096")
	fs.StringVar(&f.alias, "alias", "", "create: also create alias/`NAME` for the key")
	fs.StringVar(&f.description, "description", "", "create: the key's description `TEXT`")
	fs.StringArrayVar(&f.tags, "tag", nil, "create: tag `name=value` (repeatable)")
	fs.IntVar(&f.period, "period", 365, "rotation enable: rotation period in `DAYS` (90-2560)")
	fs.IntVar(&f.days, "days", 30, "schedule-deletion: waiting period in `DAYS` (7-30)")
	fs.StringVarP(&f.output, "output", "o", "", "public-key: write the PEM to `PATH` instead of standard output")
	fs.StringVar(&f.key, "key", "", "alias list: only the aliases of `KEY`")
	fs.StringVar(&c.kmsFlag, "kms", "", kmsFlagHelp)
	if ok, err := c.parse(fs, args, keysHelp); !ok {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return usageErrorf("keys needs a command; see \"envelope keys --help\"")
	}
	ctx := c.ctx
	k := &keysCmd{c: c, f: &f, fs: fs, ctx: ctx}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "create":
		return k.create(rest)
	case "list":
		return k.list(rest)
	case "describe":
		return k.describe(rest)
	case "enable", "disable":
		return k.setEnabled(cmd, rest)
	case "rotate":
		return k.rotate(rest)
	case "rotation":
		return k.rotation(rest)
	case "schedule-deletion":
		return k.scheduleDeletion(rest)
	case "cancel-deletion":
		return k.cancelDeletion(rest)
	case "alias":
		return k.aliasCmd(rest)
	case "public-key":
		return k.publicKey(rest)
	case "tag", "untag", "tags":
		return k.tagCmd(cmd, rest)
	}
	return usageErrorf("unknown keys command %q; see \"envelope keys --help\"", cmd)
}

type keysCmd struct {
	c   *cli
	f   *keysFlags
	fs  *pflag.FlagSet
	ctx context.Context
}

// only refuses flags that do not belong to the subcommand.
func (k *keysCmd) only(cmd string, allowed ...string) error {
	var bad []string
	k.fs.Visit(func(fl *pflag.Flag) {
		if fl.Name != "json" && fl.Name != "kms" && !contains(allowed, fl.Name) {
			bad = append(bad, "--"+fl.Name)
		}
	})
	if len(bad) > 0 {
		return usageErrorf("keys %s does not take %s", cmd, strings.Join(bad, ", "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func nargs(cmd string, args []string, n int, what string) error {
	if len(args) != n {
		return usageErrorf("keys %s takes %s; see \"envelope keys --help\"", cmd, what)
	}
	return nil
}

// conn opens the keystore; create is for commands that make keys.
func (k *keysCmd) conn(create bool) (*kmsConn, error) {
	if create {
		return k.c.openKMS(k.ctx, needKeystore)
	}
	return k.c.openKMS(k.ctx, needExisting)
}

// resolve returns the metadata of the key ref names.
func (k *keysCmd) resolve(ref string) (*kmsConn, *kms.KeyMetadata, error) {
	conn, err := k.conn(false)
	if err != nil {
		return nil, nil, err
	}
	m, err := conn.describe(k.ctx, ref)
	return conn, m, err
}

func (k *keysCmd) printJSON(v any) error {
	enc := json.NewEncoder(k.c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// done reports a change: the API output as JSON, or a line for people.
func (k *keysCmd) done(out any, format string, args ...any) error {
	if k.f.json {
		return k.printJSON(out)
	}
	fmt.Fprintf(k.c.stdout, format+"\n", args...)
	return nil
}

func (k *keysCmd) create(args []string) error {
	if err := k.only("create", "spec", "alias", "description", "tag"); err != nil {
		return err
	}
	if err := nargs("create", args, 0, "no arguments (flags only)"); err != nil {
		return err
	}
	in := &kms.CreateKeyInput{KeySpec: k.f.spec, Description: k.f.description}
	for _, t := range k.f.tags {
		name, value, ok := strings.Cut(t, "=")
		if !ok || name == "" {
			return usageErrorf("--tag %q: want name=value", t)
		}
		in.Tags = append(in.Tags, kms.Tag{Key: name, Value: value})
	}
	if k.f.alias != "" && !strings.HasPrefix(k.f.alias, "alias/") {
		return usageErrorf("--alias %q: alias names start with alias/", k.f.alias)
	}
	conn, err := k.conn(true)
	if err != nil {
		return err
	}
	var out *kms.CreateKeyOutput
	if k.f.alias == "" {
		out, err = conn.api.CreateKey(k.ctx, in)
	} else {
		taken := &hintError{fmt.Errorf("alias %s already exists", k.f.alias), "pick another name, or move it with \"envelope keys alias update\""}
		if conn.ks == nil {
			// A remote KMS takes two calls: refuse a taken alias before
			// making a key that would then be deleted.
			if _, err := conn.api.DescribeKey(k.ctx, &kms.DescribeKeyInput{KeyId: k.f.alias}); err == nil {
				return taken
			}
		}
		out, err = conn.createKeyWithAlias(k.ctx, in, k.f.alias)
		var oe *orphanError
		switch {
		case errors.As(err, &oe) && oe.scheduleErr != nil:
			return &hintError{err, fmt.Sprintf("delete the key with \"envelope keys schedule-deletion %s\"", oe.keyID)}
		case errors.As(err, &oe):
			return &hintError{err, fmt.Sprintf("to keep the key, \"envelope keys cancel-deletion %s\" (it then comes back disabled)", oe.keyID)}
		case kms.CodeOf(err) == kms.CodeAlreadyExists:
			return taken
		}
	}
	if err != nil {
		return err
	}
	if k.f.json {
		return k.printJSON(out)
	}
	name := out.KeyMetadata.KeyId
	if k.f.alias != "" {
		name = k.f.alias + " (" + name + ")"
	}
	fmt.Fprintf(k.c.stdout, "created %s key %s\n%s\n", out.KeyMetadata.KeySpec, name, out.KeyMetadata.Arn)
	return nil
}

// keyRow is one key of `keys list`, with its aliases.
type keyRow struct {
	*kms.KeyMetadata
	Aliases []string `json:"Aliases"`
}

func (k *keysCmd) list(args []string) error {
	if err := k.only("list"); err != nil {
		return err
	}
	if err := nargs("list", args, 0, "no arguments"); err != nil {
		return err
	}
	conn, err := k.conn(false)
	if err != nil {
		return err
	}
	aliases := map[string][]string{}
	marker := ""
	for {
		out, err := conn.api.ListAliases(k.ctx, &kms.ListAliasesInput{Marker: marker})
		if err != nil {
			return err
		}
		for _, a := range out.Aliases {
			aliases[a.TargetKeyId] = append(aliases[a.TargetKeyId], a.AliasName)
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	rows := []keyRow{}
	marker = ""
	for {
		out, err := conn.api.ListKeys(k.ctx, &kms.ListKeysInput{Marker: marker})
		if err != nil {
			return err
		}
		for _, e := range out.Keys {
			d, err := conn.api.DescribeKey(k.ctx, &kms.DescribeKeyInput{KeyId: e.KeyId})
			if err != nil {
				if kms.CodeOf(err) == kms.CodeNotFound {
					continue // deleted meanwhile
				}
				return err
			}
			rows = append(rows, keyRow{KeyMetadata: d.KeyMetadata, Aliases: append([]string{}, aliases[e.KeyId]...)})
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i].CreationDate.Time, rows[j].CreationDate.Time
		return a.Before(b) || a.Equal(b) && rows[i].KeyId < rows[j].KeyId
	})
	if k.f.json {
		return k.printJSON(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(k.c.stdout, "no keys yet; create one with \"envelope keys create\"")
		return nil
	}
	tw := tabwriter.NewWriter(k.c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tALIASES\tSPEC\tSTATE\tCREATED\tDESCRIPTION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.KeyId, dash(strings.Join(r.Aliases, ",")), r.KeySpec,
			r.KeyState, r.CreationDate.Format("2006-01-02"), dash(oneLine(r.Description)))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

func (k *keysCmd) describe(args []string) error {
	if err := k.only("describe"); err != nil {
		return err
	}
	if err := nargs("describe", args, 1, "one KEY"); err != nil {
		return err
	}
	conn, m, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	if k.f.json {
		return k.printJSON(&kms.DescribeKeyOutput{KeyMetadata: m})
	}
	as, err := conn.api.ListAliases(k.ctx, &kms.ListAliasesInput{KeyId: m.KeyId})
	if err != nil {
		return err
	}
	var names []string
	for _, a := range as.Aliases {
		names = append(names, a.AliasName)
	}
	tw := tabwriter.NewWriter(k.c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Key ID:\t%s\n", m.KeyId)
	fmt.Fprintf(tw, "ARN:\t%s\n", m.Arn)
	fmt.Fprintf(tw, "Aliases:\t%s\n", dash(strings.Join(names, ", ")))
	fmt.Fprintf(tw, "Spec:\t%s\n", m.KeySpec)
	fmt.Fprintf(tw, "Usage:\t%s\n", m.KeyUsage)
	fmt.Fprintf(tw, "State:\t%s\n", m.KeyState)
	if m.DeletionDate != nil {
		fmt.Fprintf(tw, "Deletion date:\t%s\n", m.DeletionDate.Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "Created:\t%s\n", m.CreationDate.Format(time.RFC3339))
	fmt.Fprintf(tw, "Description:\t%s\n", dash(m.Description))
	fmt.Fprintf(tw, "Algorithms:\t%s\n", strings.Join(m.EncryptionAlgorithms, ", "))
	return tw.Flush()
}

func (k *keysCmd) setEnabled(cmd string, args []string) error {
	if err := k.only(cmd); err != nil {
		return err
	}
	if err := nargs(cmd, args, 1, "one KEY"); err != nil {
		return err
	}
	conn, m, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	var out any
	if cmd == "enable" {
		out, err = conn.api.EnableKey(k.ctx, &kms.EnableKeyInput{KeyId: m.KeyId})
	} else {
		out, err = conn.api.DisableKey(k.ctx, &kms.DisableKeyInput{KeyId: m.KeyId})
	}
	if err != nil {
		return kmsHint(err, args[0])
	}
	return k.done(out, "%sd key %s", cmd, keyName(args[0], m))
}

func (k *keysCmd) rotate(args []string) error {
	if err := k.only("rotate"); err != nil {
		return err
	}
	if err := nargs("rotate", args, 1, "one KEY"); err != nil {
		return err
	}
	conn, m, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	out, err := conn.api.RotateKeyOnDemand(k.ctx, &kms.RotateKeyOnDemandInput{KeyId: m.KeyId})
	if err != nil {
		return kmsHint(err, args[0])
	}
	return k.done(out, "rotated key %s: new encryptions use new material; earlier ciphertexts still decrypt", keyName(args[0], m))
}

func (k *keysCmd) rotation(args []string) error {
	if len(args) == 0 {
		return usageErrorf("keys rotation needs enable, disable, status or list; see \"envelope keys --help\"")
	}
	sub, args := args[0], args[1:]
	allowed := []string{}
	if sub == "enable" {
		allowed = append(allowed, "period")
	}
	if err := k.only("rotation "+sub, allowed...); err != nil {
		return err
	}
	if err := nargs("rotation "+sub, args, 1, "one KEY"); err != nil {
		return err
	}
	conn, m, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	name := keyName(args[0], m)
	switch sub {
	case "enable":
		p := int32(k.f.period)
		out, err := conn.api.EnableKeyRotation(k.ctx, &kms.EnableKeyRotationInput{KeyId: m.KeyId, RotationPeriodInDays: &p})
		if err != nil {
			return kmsHint(err, args[0])
		}
		return k.done(out, "key %s now rotates every %d days", name, k.f.period)
	case "disable":
		out, err := conn.api.DisableKeyRotation(k.ctx, &kms.DisableKeyRotationInput{KeyId: m.KeyId})
		if err != nil {
			return kmsHint(err, args[0])
		}
		return k.done(out, "key %s no longer rotates automatically", name)
	case "status":
		out, err := conn.api.GetKeyRotationStatus(k.ctx, &kms.GetKeyRotationStatusInput{KeyId: m.KeyId})
		if err != nil {
			return kmsHint(err, args[0])
		}
		if !out.KeyRotationEnabled {
			return k.done(out, "key %s: automatic rotation disabled", name)
		}
		return k.done(out, "key %s: rotates every %d days; next on %s", name, *out.RotationPeriodInDays, out.NextRotationDate.Format("2006-01-02"))
	case "list":
		var all []kms.RotationsListEntry
		marker := ""
		for {
			out, err := conn.api.ListKeyRotations(k.ctx, &kms.ListKeyRotationsInput{KeyId: m.KeyId, Marker: marker})
			if err != nil {
				return kmsHint(err, args[0])
			}
			all = append(all, out.Rotations...)
			if !out.Truncated {
				break
			}
			marker = out.NextMarker
		}
		if k.f.json {
			return k.printJSON(&kms.ListKeyRotationsOutput{Rotations: append([]kms.RotationsListEntry{}, all...)})
		}
		if len(all) == 0 {
			fmt.Fprintf(k.c.stdout, "key %s has not been rotated\n", name)
			return nil
		}
		tw := tabwriter.NewWriter(k.c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DATE\tTYPE\tKEY MATERIAL ID")
		for _, r := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.RotationDate.Format(time.RFC3339), r.RotationType, r.KeyMaterialId)
		}
		return tw.Flush()
	}
	return usageErrorf("unknown keys rotation command %q (want enable, disable, status or list)", sub)
}

func (k *keysCmd) scheduleDeletion(args []string) error {
	if err := k.only("schedule-deletion", "days"); err != nil {
		return err
	}
	if err := nargs("schedule-deletion", args, 1, "one KEY"); err != nil {
		return err
	}
	conn, m, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	d := int32(k.f.days)
	out, err := conn.api.ScheduleKeyDeletion(k.ctx, &kms.ScheduleKeyDeletionInput{KeyId: m.KeyId, PendingWindowInDays: &d})
	if err != nil {
		return kmsHint(err, args[0])
	}
	return k.done(out, "key %s is unusable from now on and will be destroyed on %s; undo with \"envelope keys cancel-deletion %s\"",
		keyName(args[0], m), out.DeletionDate.Format("2006-01-02"), args[0])
}

func (k *keysCmd) cancelDeletion(args []string) error {
	if err := k.only("cancel-deletion"); err != nil {
		return err
	}
	if err := nargs("cancel-deletion", args, 1, "one KEY"); err != nil {
		return err
	}
	conn, m, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	out, err := conn.api.CancelKeyDeletion(k.ctx, &kms.CancelKeyDeletionInput{KeyId: m.KeyId})
	if err != nil {
		return kmsHint(err, args[0])
	}
	return k.done(out, "deletion of key %s cancelled; the key is disabled: enable it with \"envelope keys enable %s\"", keyName(args[0], m), args[0])
}

func (k *keysCmd) aliasCmd(args []string) error {
	if len(args) == 0 {
		return usageErrorf("keys alias needs create, update, delete or list; see \"envelope keys --help\"")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "create", "update":
		if err := k.only("alias " + sub); err != nil {
			return err
		}
		if err := nargs("alias "+sub, args, 2, "alias/NAME and KEY"); err != nil {
			return err
		}
		if !strings.HasPrefix(args[0], "alias/") {
			return usageErrorf("alias name %q: alias names start with alias/", args[0])
		}
		conn, m, err := k.resolve(args[1])
		if err != nil {
			return err
		}
		var out any
		if sub == "create" {
			out, err = conn.api.CreateAlias(k.ctx, &kms.CreateAliasInput{AliasName: args[0], TargetKeyId: m.KeyId})
		} else {
			out, err = conn.api.UpdateAlias(k.ctx, &kms.UpdateAliasInput{AliasName: args[0], TargetKeyId: m.KeyId})
		}
		if err != nil {
			return kmsHint(err, args[0])
		}
		return k.done(out, "alias %s → key %s", args[0], m.KeyId)
	case "delete":
		if err := k.only("alias delete"); err != nil {
			return err
		}
		if err := nargs("alias delete", args, 1, "alias/NAME"); err != nil {
			return err
		}
		conn, err := k.conn(false)
		if err != nil {
			return err
		}
		out, err := conn.api.DeleteAlias(k.ctx, &kms.DeleteAliasInput{AliasName: args[0]})
		if err != nil {
			return kmsHint(err, args[0])
		}
		return k.done(out, "deleted alias %s (the key is unchanged)", args[0])
	case "list":
		if err := k.only("alias list", "key"); err != nil {
			return err
		}
		if err := nargs("alias list", args, 0, "no arguments"); err != nil {
			return err
		}
		conn, err := k.conn(false)
		if err != nil {
			return err
		}
		in := &kms.ListAliasesInput{}
		if k.f.key != "" {
			_, m, err := k.resolve(k.f.key)
			if err != nil {
				return err
			}
			in.KeyId = m.KeyId
		}
		var all []kms.AliasListEntry
		for {
			out, err := conn.api.ListAliases(k.ctx, in)
			if err != nil {
				return err
			}
			all = append(all, out.Aliases...)
			if !out.Truncated {
				break
			}
			in.Marker = out.NextMarker
		}
		if k.f.json {
			return k.printJSON(&kms.ListAliasesOutput{Aliases: append([]kms.AliasListEntry{}, all...)})
		}
		tw := tabwriter.NewWriter(k.c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ALIAS\tKEY ID")
		for _, a := range all {
			fmt.Fprintf(tw, "%s\t%s\n", a.AliasName, a.TargetKeyId)
		}
		return tw.Flush()
	}
	return usageErrorf("unknown keys alias command %q (want create, update, delete or list)", sub)
}

func (k *keysCmd) publicKey(args []string) error {
	if err := k.only("public-key", "output"); err != nil {
		return err
	}
	if err := nargs("public-key", args, 1, "one KEY"); err != nil {
		return err
	}
	conn, m, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	out, err := conn.api.GetPublicKey(k.ctx, &kms.GetPublicKeyInput{KeyId: m.KeyId})
	if err != nil {
		return kmsHint(err, args[0])
	}
	if k.f.json {
		return k.printJSON(out)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: out.PublicKey})
	if k.f.output == "" || k.f.output == "-" {
		_, err := k.c.stdout.Write(p)
		return err
	}
	o, err := k.c.createOutput(k.f.output, 0o644)
	if err != nil {
		return err
	}
	defer o.abort()
	if _, err := o.w.Write(p); err != nil {
		return err
	}
	return o.commit()
}

func (k *keysCmd) tagCmd(cmd string, args []string) error {
	if err := k.only(cmd); err != nil {
		return err
	}
	switch {
	case cmd == "tags":
		if err := nargs(cmd, args, 1, "one KEY"); err != nil {
			return err
		}
	case len(args) < 2:
		return usageErrorf("keys %s takes KEY and at least one tag; see \"envelope keys --help\"", cmd)
	}
	conn, m, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	switch cmd {
	case "tag":
		in := &kms.TagResourceInput{KeyId: m.KeyId}
		for _, t := range args[1:] {
			name, value, ok := strings.Cut(t, "=")
			if !ok || name == "" {
				return usageErrorf("tag %q: want name=value", t)
			}
			in.Tags = append(in.Tags, kms.Tag{Key: name, Value: value})
		}
		out, err := conn.api.TagResource(k.ctx, in)
		if err != nil {
			return kmsHint(err, args[0])
		}
		return k.done(out, "tagged key %s", keyName(args[0], m))
	case "untag":
		out, err := conn.api.UntagResource(k.ctx, &kms.UntagResourceInput{KeyId: m.KeyId, TagKeys: args[1:]})
		if err != nil {
			return kmsHint(err, args[0])
		}
		return k.done(out, "untagged key %s", keyName(args[0], m))
	}
	var all []kms.Tag
	in := &kms.ListResourceTagsInput{KeyId: m.KeyId}
	for {
		out, err := conn.api.ListResourceTags(k.ctx, in)
		if err != nil {
			return kmsHint(err, args[0])
		}
		all = append(all, out.Tags...)
		if !out.Truncated {
			break
		}
		in.Marker = out.NextMarker
	}
	if k.f.json {
		return k.printJSON(&kms.ListResourceTagsOutput{Tags: append([]kms.Tag{}, all...)})
	}
	tw := tabwriter.NewWriter(k.c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TAG\tVALUE")
	for _, t := range all {
		fmt.Fprintf(tw, "%s\t%s\n", t.Key, t.Value)
	}
	return tw.Flush()
}
