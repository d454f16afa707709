package main

// The keys command: its subcommands (keysCommands), each parsed with a
// flag set of its own, and what each does.

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/spf13/pflag"
)

const keysHelp = `Usage: envelope keys COMMAND [flags] [ARGS]

Manage the keys of the keystore (--store, default $ENVELOPE_STORE, else
$ENVELOPE_HOME or ~/.local/share/envelope), or of the KMS named by --kms URL
/ $ENVELOPE_KMS.
KEY is alias/NAME, a key id or a key ARN. Every command prints a table or a
line for people, and JSON with --json.

Commands:
  create [--spec SPEC] [--usage USAGE] [--origin EXTERNAL] [--alias alias/NAME] [--description TEXT] [--tag name=value]...
                              create a key (SPEC and USAGE: see "envelope keys
                              create --help"). The key and its alias are made
                              in one step (with --kms, in two calls: if the
                              alias fails, the new key is scheduled for
                              deletion in 7 days). --origin EXTERNAL makes a
                              key with no material, for "keys import"
  import KEY --material FILE [--expires TIME] [--new]
                              import key material into a key made with
                              --origin EXTERNAL (see "envelope keys import --help")
  delete-material KEY [--material-id ID]
                              destroy the key's imported material; the key is
                              unusable until the same material is imported again
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
  public-key KEY [-o PEM]     write an asymmetric key's public key (SPKI PEM)
  tag KEY name=value...       set tags
  untag KEY name...           remove tags
  tags KEY                    list tags
  policy get KEY              print the key policy, exactly as stored
  policy put KEY [FILE] [--bypass-policy-lockout-safety-check]
                              set the key policy (FILE or standard input)
  grant create KEY --grantee ARN --operations OP,... [--retiring ARN] [--name NAME]
        [--constraint-equals k=v]... [--constraint-subset k=v]...
                              let a principal use the key; prints the grant id and token
  grant list KEY              list the key's grants
  grant retire KEY GRANT_ID | grant retire --token TOKEN
  grant revoke KEY GRANT_ID   remove a grant

Flags of every command ("envelope keys COMMAND --help" lists its own):
%s
Examples:
  envelope keys create --alias alias/app --description "app data"
  envelope keys rotation enable alias/app --period 180
  envelope keys create --spec RSA_3072 --alias alias/ops
  envelope keys create --spec ECC_NIST_P256 --usage SIGN_VERIFY --alias alias/release
  envelope keys public-key alias/ops -o ops.pub.pem
  envelope keys create --origin EXTERNAL --alias alias/byok && openssl rand -out k.bin 32 && envelope keys import alias/byok --material k.bin
  envelope keys disable alias/app
  envelope keys list --json | jq '.[].KeyId'
`

// keysFlags are the flags of the keys commands: --json and --kms (in
// cli.kmsFlag) for every one, the others each for the command that
// registers it.
type keysFlags struct {
	json        bool
	spec        string
	usage       string
	alias       string
	description string
	tags        []string
	period      int
	days        int
	output      string
	key         string
	// keys import and keys delete-material.
	origin, material, expires string
	newMaterial, allMaterial  bool
	wrapping, wrapSpec        string
	materialDesc, materialID  string
	// keys policy and keys grant.
	bypass                       bool
	grantee, retiring, grantName string
	token                        string
	operations, equals, subset   []string
}

// keysCommand is one keys subcommand.
type keysCommand struct {
	name  string // as typed: "create", "rotation enable"
	usage string // its arguments and flags, after its name
	doc   string // what it does, for its --help
	// flags registers the flags it takes besides --json and --kms.
	flags func(fs *pflag.FlagSet, f *keysFlags)
	// Exactly one of key and run is set. key runs a command that takes
	// one KEY, once the KEY is resolved; run runs any other command with
	// its arguments, which it checks.
	key func(k *keysCmd, r keyRef) error
	run func(k *keysCmd, args []string) error
}

// keysCommands are the keys subcommands, in the order of keysHelp.
var keysCommands = []keysCommand{
	{name: "create", usage: "[--spec SPEC] [--usage USAGE] [--alias alias/NAME] [--description TEXT] [--tag name=value]...",
		doc: `Create a key. SPEC and the USAGEs it takes (the first is the default):
  SYMMETRIC_DEFAULT (the default)         ENCRYPT_DECRYPT
  RSA_2048, RSA_3072, RSA_4096            ENCRYPT_DECRYPT or SIGN_VERIFY
  ECC_NIST_P256, ECC_NIST_P384,
  ECC_NIST_P521                           SIGN_VERIFY or KEY_AGREEMENT
  ECC_SECG_P256K1, ECC_NIST_EDWARDS25519,
  ML_DSA_44, ML_DSA_65, ML_DSA_87         SIGN_VERIFY
  HMAC_224, HMAC_256, HMAC_384, HMAC_512  GENERATE_VERIFY_MAC
(AWS KMS's pairs; SM2 exists only in AWS's China Regions.) Signing keys
sign with "envelope sign", HMAC keys with "envelope mac". The key and its
alias are made in one step (with --kms, in two calls: if the alias fails,
the new key is scheduled for deletion in 7 days).`,
		flags: func(fs *pflag.FlagSet, f *keysFlags) {
			fs.StringVar(&f.spec, "spec", kms.SpecSymmetricDefault, "key `SPEC` (see above)")
			fs.StringVar(&f.usage, "usage", "", "key `USAGE`: ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC or KEY_AGREEMENT (default: the spec's first)")
			fs.StringVar(&f.origin, "origin", kms.OriginAWSKMS, "`ORIGIN` of the material: AWS_KMS (made by the KMS) or EXTERNAL (none until \"envelope keys import\")")
			fs.StringVar(&f.alias, "alias", "", "also create alias/`NAME` for the key")
			fs.StringVar(&f.description, "description", "", "the key's description `TEXT`")
			fs.StringArrayVar(&f.tags, "tag", nil, "tag `name=value` (repeatable)")
		},
		run: (*keysCmd).create},
	{name: "list", doc: "List the keys with their aliases and states.", run: (*keysCmd).list},
	{name: "describe", usage: "KEY", doc: "Show a key's metadata.", key: (*keysCmd).describe},
	{name: "enable", usage: "KEY", doc: "Allow the key's use.",
		key: func(k *keysCmd, r keyRef) error { return k.setEnabled("enable", r) }},
	{name: "disable", usage: "KEY", doc: "Refuse the key's use, until it is enabled again.",
		key: func(k *keysCmd, r keyRef) error { return k.setEnabled("disable", r) }},
	{name: "rotate", usage: "KEY", doc: "Rotate the key's material now (symmetric keys; earlier versions still decrypt).",
		key: (*keysCmd).rotate},
	{name: "rotation enable", usage: "KEY [--period DAYS]", doc: "Rotate the key automatically every DAYS (90-2560, default 365).",
		flags: func(fs *pflag.FlagSet, f *keysFlags) {
			fs.IntVar(&f.period, "period", 365, "rotation period in `DAYS` (90-2560)")
		},
		key: (*keysCmd).rotationEnable},
	{name: "rotation disable", usage: "KEY", doc: "Stop the key's automatic rotation.", key: (*keysCmd).rotationDisable},
	{name: "rotation status", usage: "KEY", doc: "Show whether and when the key rotates.", key: (*keysCmd).rotationStatus},
	{name: "rotation list", usage: "KEY [--all]", doc: `List the key's rotations; with --all, every key material of the key (the
first, and imported material awaiting "envelope keys rotate"), with its state
and, for imported material, whether it is imported and when it expires.`,
		flags: func(fs *pflag.FlagSet, f *keysFlags) {
			fs.BoolVar(&f.allMaterial, "all", false, "list every key material, not only those rotations made")
		},
		key: (*keysCmd).rotationList},
	{name: "schedule-deletion", usage: "KEY [--days N]",
		doc: "Make the key unusable now and destroy it after N days (7-30, default 30).",
		flags: func(fs *pflag.FlagSet, f *keysFlags) {
			fs.IntVar(&f.days, "days", 30, "waiting period in `DAYS` (7-30)")
		},
		key: (*keysCmd).scheduleDeletion},
	{name: "cancel-deletion", usage: "KEY", doc: "Cancel a scheduled deletion (the key comes back disabled).",
		key: (*keysCmd).cancelDeletion},
	{name: "alias create", usage: "alias/NAME KEY", doc: "Create the alias alias/NAME for KEY.",
		run: func(k *keysCmd, args []string) error { return k.aliasSet("create", args) }},
	{name: "alias update", usage: "alias/NAME KEY", doc: "Point the alias alias/NAME at KEY.",
		run: func(k *keysCmd, args []string) error { return k.aliasSet("update", args) }},
	{name: "alias delete", usage: "alias/NAME", doc: "Delete the alias alias/NAME (its key is unchanged).",
		run: (*keysCmd).aliasDelete},
	{name: "alias list", usage: "[--key KEY]", doc: "List the aliases, or with --key those of KEY.",
		flags: func(fs *pflag.FlagSet, f *keysFlags) {
			fs.StringVar(&f.key, "key", "", "only the aliases of `KEY`")
		},
		run: (*keysCmd).aliasList},
	{name: "public-key", usage: "KEY [-o PEM]", doc: `Write an asymmetric key's public key as PEM (PUBLIC KEY): the DER
SubjectPublicKeyInfo the KMS returns, which OpenSSL reads for RSA, the
NIST curves, secp256k1 and Ed25519, and which holds the FIPS 204 OID and
raw key for ML-DSA.`,
		flags: func(fs *pflag.FlagSet, f *keysFlags) {
			fs.StringVarP(&f.output, "output", "o", "", "write the PEM to `PATH` instead of standard output")
		},
		key: (*keysCmd).publicKey},
	{name: "import", usage: "KEY --material FILE [--expires TIME] [--new] [--wrapping-algorithm A] [--wrapping-key-spec S] [--material-description TEXT]",
		doc: importHelp, flags: importFlags, key: (*keysCmd).importMaterial},
	{name: "delete-material", usage: "KEY [--material-id ID]",
		doc: `Destroy the key's imported material (the current one, or the one --material-id
names). The key is PendingImport, and unusable, until the same material is
imported again with "envelope keys import"; material imported for a rotation
and not yet current goes altogether.`,
		flags: func(fs *pflag.FlagSet, f *keysFlags) {
			fs.StringVar(&f.materialID, "material-id", "", "the key material `ID` to destroy (\"envelope keys rotation list --all KEY\" lists them)")
		},
		key: (*keysCmd).deleteMaterial},
	{name: "tag", usage: "KEY name=value...", doc: "Set tags on the key.",
		run: func(k *keysCmd, args []string) error { return k.tag("tag", args) }},
	{name: "untag", usage: "KEY name...", doc: "Remove tags from the key.",
		run: func(k *keysCmd, args []string) error { return k.tag("untag", args) }},
	{name: "tags", usage: "KEY", doc: "List the key's tags.", key: (*keysCmd).listTags},
}

// keysGroups are the words that begin the names of several keys commands.
var keysGroups = []string{"rotation", "alias"}

// help returns the command's --help text: a format for its flag usages.
func (cmd *keysCommand) help() string {
	usage := strings.TrimSpace("envelope keys " + cmd.name + " " + cmd.usage)
	text := "Usage: " + usage + "\n\n" + cmd.doc + "\n\n"
	if strings.Contains(cmd.usage, "KEY") {
		text += "KEY is alias/NAME, a key id or a key ARN.\n"
	}
	text += "\"envelope keys --help\" lists the other keys commands.\n"
	return strings.ReplaceAll(text, "%", "%%") + "\nFlags:\n%s"
}

// keysFlagSet returns the flag set of the keys command name ("keys",
// "keys rotation", "keys rotation enable"): its own flags, registered by
// own (nil for none), and the flags every keys command takes, --json,
// --kms, --store and the root key flags. Their defaults are the values
// already parsed, which the flag set keeps.
func (c *cli) keysFlagSet(name string, f *keysFlags, own func(*pflag.FlagSet, *keysFlags)) *pflag.FlagSet {
	fs := c.newFlagSet(name)
	if own != nil {
		own(fs, f)
	}
	fs.BoolVar(&f.json, "json", f.json, "print JSON (the KMS API's shapes) instead of text")
	fs.StringVar(&c.kmsFlag, "kms", c.kmsFlag, kmsFlagHelp)
	c.store.register(fs)
	return fs
}

// keys runs "envelope keys [--json] [--kms URL] COMMAND [flags] [ARGS]".
// Before COMMAND (and between the words of a two-word one) only the flags
// of every command are taken; after it, its own too, anywhere among its
// arguments. A flag the command does not take is refused by the parser.
func (c *cli) keys(args []string) error {
	var f keysFlags
	fs := c.keysFlagSet("keys", &f, nil)
	fs.SetInterspersed(false)
	if ok, err := c.parse(fs, args, keysHelp); !ok {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return usageErrorf("keys needs a command; see \"envelope keys --help\"")
	}
	name, args := args[0], args[1:]
	if slices.Contains(keysGroups, name) {
		gfs := c.keysFlagSet("keys "+name, &f, nil)
		gfs.SetInterspersed(false)
		if ok, err := c.parse(gfs, args, keysHelp); !ok {
			return err
		}
		args = gfs.Args()
		subs := keysSubcommands(name)
		if len(args) == 0 {
			return usageErrorf("keys %s needs %s; see \"envelope keys --help\"", name, subs)
		}
		if keysCommandNamed(name+" "+args[0]) == nil {
			return usageErrorf("unknown keys %s command %q (want %s)", name, args[0], subs)
		}
		name, args = name+" "+args[0], args[1:]
	}
	cmd := keysCommandNamed(name)
	if cmd == nil {
		return usageErrorf("unknown keys command %q; see \"envelope keys --help\"", name)
	}
	cfs := c.keysFlagSet("keys "+name, &f, cmd.flags)
	if ok, err := c.parse(cfs, args, cmd.help()); !ok {
		return err
	}
	args = cfs.Args()
	k := &keysCmd{c: c, f: &f, ctx: c.ctx}
	if cmd.run != nil {
		return cmd.run(k, args)
	}
	if err := nargs(name, args, 1, "one KEY"); err != nil {
		return err
	}
	r, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	return cmd.key(k, r)
}

// keysCommandNamed returns the keys command of that name, or nil.
func keysCommandNamed(name string) *keysCommand {
	for i := range keysCommands {
		if keysCommands[i].name == name {
			return &keysCommands[i]
		}
	}
	return nil
}

// keysSubcommands lists the second words of the commands of group, as in
// "enable, disable, status or list".
func keysSubcommands(group string) string {
	var subs []string
	for _, cmd := range keysCommands {
		if sub, ok := strings.CutPrefix(cmd.name, group+" "); ok {
			subs = append(subs, sub)
		}
	}
	return strings.Join(subs[:len(subs)-1], ", ") + " or " + subs[len(subs)-1]
}

// keysCmd is one run of a keys command.
type keysCmd struct {
	c   *cli
	f   *keysFlags
	ctx context.Context
}

// keyRef is the KEY argument of a command, resolved.
type keyRef struct {
	ref  string // as given
	conn *kmsConn
	m    *kms.KeyMetadata
}

// name is how messages name the key (keyName).
func (r keyRef) name() string { return keyName(r.ref, r.m) }

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

// resolve finds the key ref names.
func (k *keysCmd) resolve(ref string) (keyRef, error) {
	conn, err := k.conn(false)
	if err != nil {
		return keyRef{}, err
	}
	m, err := conn.describe(k.ctx, ref)
	return keyRef{ref, conn, m}, err
}

// aliases lists the aliases of the KMS, or of the key keyID.
func (k *keysCmd) aliases(conn *kmsConn, keyID string) ([]kms.AliasListEntry, error) {
	return listAll(func(marker string) ([]kms.AliasListEntry, string, error) {
		out, err := conn.api.ListAliases(k.ctx, &kms.ListAliasesInput{KeyId: keyID, Marker: marker})
		if err != nil {
			return nil, "", err
		}
		return out.Aliases, nextMarker(out.Truncated, out.NextMarker), nil
	})
}

// listAll returns the entries of every page of a KMS list operation, never
// nil: page returns the page at marker ("" for the first) and the marker
// of the next page, "" after the last.
func listAll[T any](page func(marker string) ([]T, string, error)) ([]T, error) {
	all := []T{}
	for marker := ""; ; {
		entries, next, err := page(marker)
		if err != nil {
			return nil, err
		}
		all = append(all, entries...)
		if next == "" {
			return all, nil
		}
		marker = next
	}
}

// nextMarker is the marker of the page after one that was truncated (or
// not), "" for none.
func nextMarker(truncated bool, marker string) string {
	if !truncated {
		return ""
	}
	return marker
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
	if err := nargs("create", args, 0, "no arguments (flags only)"); err != nil {
		return err
	}
	in := &kms.CreateKeyInput{KeySpec: k.f.spec, KeyUsage: k.f.usage, Description: k.f.description}
	if k.f.origin != kms.OriginAWSKMS {
		in.Origin = k.f.origin
	}
	if in.KeyUsage == "" {
		in.KeyUsage = defaultUsage(in.KeySpec)
	}
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
	kind := out.KeyMetadata.KeySpec
	if out.KeyMetadata.KeyUsage != kms.UsageEncryptDecrypt {
		kind += " " + out.KeyMetadata.KeyUsage
	}
	fmt.Fprintf(k.c.stdout, "created %s key %s\n%s\n", kind, name, out.KeyMetadata.Arn)
	if out.KeyMetadata.Origin == kms.OriginExternal {
		ref := name
		if k.f.alias != "" {
			ref = k.f.alias
		}
		fmt.Fprintf(k.c.stdout, "it has no material until you import it: envelope keys import %s --material FILE\n", ref)
	}
	return nil
}

// keyRow is one key of `keys list`, with its aliases.
type keyRow struct {
	*kms.KeyMetadata
	Aliases []string `json:"Aliases"`
}

func (k *keysCmd) list(args []string) error {
	if err := nargs("list", args, 0, "no arguments"); err != nil {
		return err
	}
	conn, err := k.conn(false)
	if err != nil {
		return err
	}
	all, err := k.aliases(conn, "")
	if err != nil {
		return err
	}
	aliases := map[string][]string{}
	for _, a := range all {
		aliases[a.TargetKeyId] = append(aliases[a.TargetKeyId], a.AliasName)
	}
	keys, err := listAll(func(marker string) ([]kms.KeyListEntry, string, error) {
		out, err := conn.api.ListKeys(k.ctx, &kms.ListKeysInput{Marker: marker})
		if err != nil {
			return nil, "", err
		}
		return out.Keys, nextMarker(out.Truncated, out.NextMarker), nil
	})
	if err != nil {
		return err
	}
	rows := []keyRow{}
	for _, e := range keys {
		d, err := conn.api.DescribeKey(k.ctx, &kms.DescribeKeyInput{KeyId: e.KeyId})
		if err != nil {
			if kms.CodeOf(err) == kms.CodeNotFound {
				continue // deleted meanwhile
			}
			return err
		}
		rows = append(rows, keyRow{KeyMetadata: d.KeyMetadata, Aliases: append([]string{}, aliases[e.KeyId]...)})
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

func (k *keysCmd) describe(r keyRef) error {
	m := r.m
	if k.f.json {
		return k.printJSON(&kms.DescribeKeyOutput{KeyMetadata: m})
	}
	as, err := r.conn.api.ListAliases(k.ctx, &kms.ListAliasesInput{KeyId: m.KeyId})
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
	fmt.Fprintf(tw, "Origin:\t%s\n", m.Origin)
	switch m.ExpirationModel {
	case kms.ExpirationModelExpires:
		fmt.Fprintf(tw, "Material expires:\t%s\n", m.ValidTo.Format(time.RFC3339))
	case kms.ExpirationModelDoesNotExpire:
		fmt.Fprintf(tw, "Material expires:\tnever\n")
	}
	if m.DeletionDate != nil {
		fmt.Fprintf(tw, "Deletion date:\t%s\n", m.DeletionDate.Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "Created:\t%s\n", m.CreationDate.Format(time.RFC3339))
	fmt.Fprintf(tw, "Description:\t%s\n", dash(m.Description))
	algs := slices.Concat(m.EncryptionAlgorithms, m.SigningAlgorithms, m.MacAlgorithms, m.KeyAgreementAlgorithms)
	fmt.Fprintf(tw, "Algorithms:\t%s\n", strings.Join(algs, ", "))
	return tw.Flush()
}

// setEnabled runs enable or disable (cmd).
func (k *keysCmd) setEnabled(cmd string, r keyRef) error {
	var out any
	var err error
	if cmd == "enable" {
		out, err = r.conn.api.EnableKey(k.ctx, &kms.EnableKeyInput{KeyId: r.m.KeyId})
	} else {
		out, err = r.conn.api.DisableKey(k.ctx, &kms.DisableKeyInput{KeyId: r.m.KeyId})
	}
	if err != nil {
		return kmsHint(err, r.ref)
	}
	return k.done(out, "%sd key %s", cmd, r.name())
}

func (k *keysCmd) rotate(r keyRef) error {
	out, err := r.conn.api.RotateKeyOnDemand(k.ctx, &kms.RotateKeyOnDemandInput{KeyId: r.m.KeyId})
	if err != nil {
		return kmsHint(err, r.ref)
	}
	return k.done(out, "rotated key %s: new encryptions use new material; earlier ciphertexts still decrypt", r.name())
}

func (k *keysCmd) rotationEnable(r keyRef) error {
	p := int32(k.f.period)
	out, err := r.conn.api.EnableKeyRotation(k.ctx, &kms.EnableKeyRotationInput{KeyId: r.m.KeyId, RotationPeriodInDays: &p})
	if err != nil {
		return kmsHint(err, r.ref)
	}
	return k.done(out, "key %s now rotates every %d days", r.name(), k.f.period)
}

func (k *keysCmd) rotationDisable(r keyRef) error {
	out, err := r.conn.api.DisableKeyRotation(k.ctx, &kms.DisableKeyRotationInput{KeyId: r.m.KeyId})
	if err != nil {
		return kmsHint(err, r.ref)
	}
	return k.done(out, "key %s no longer rotates automatically", r.name())
}

func (k *keysCmd) rotationStatus(r keyRef) error {
	out, err := r.conn.api.GetKeyRotationStatus(k.ctx, &kms.GetKeyRotationStatusInput{KeyId: r.m.KeyId})
	if err != nil {
		return kmsHint(err, r.ref)
	}
	if !out.KeyRotationEnabled {
		return k.done(out, "key %s: automatic rotation disabled", r.name())
	}
	return k.done(out, "key %s: rotates every %d days; next on %s", r.name(), *out.RotationPeriodInDays, out.NextRotationDate.Format("2006-01-02"))
}

func (k *keysCmd) rotationList(r keyRef) error {
	all, err := listAll(func(marker string) ([]kms.RotationsListEntry, string, error) {
		in := &kms.ListKeyRotationsInput{KeyId: r.m.KeyId, Marker: marker}
		if k.f.allMaterial {
			in.IncludeKeyMaterial = "ALL_KEY_MATERIAL"
		}
		out, err := r.conn.api.ListKeyRotations(k.ctx, in)
		if err != nil {
			return nil, "", kmsHint(err, r.ref)
		}
		return out.Rotations, nextMarker(out.Truncated, out.NextMarker), nil
	})
	if err != nil {
		return err
	}
	if k.f.json {
		return k.printJSON(&kms.ListKeyRotationsOutput{Rotations: all})
	}
	if len(all) == 0 {
		fmt.Fprintf(k.c.stdout, "key %s has not been rotated\n", r.name())
		return nil
	}
	tw := tabwriter.NewWriter(k.c.stdout, 0, 4, 2, ' ', 0)
	if !k.f.allMaterial {
		fmt.Fprintln(tw, "DATE\tTYPE\tKEY MATERIAL ID")
		for _, e := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.RotationDate.Format(time.RFC3339), e.RotationType, e.KeyMaterialId)
		}
		return tw.Flush()
	}
	fmt.Fprintln(tw, "KEY MATERIAL ID\tSTATE\tIMPORT\tEXPIRES\tROTATED\tDESCRIPTION")
	for _, e := range all {
		expires, rotated := "-", "-"
		switch {
		case e.ValidTo != nil:
			expires = e.ValidTo.Format(time.RFC3339)
		case e.ExpirationModel == kms.ExpirationModelDoesNotExpire:
			expires = "never"
		}
		if e.RotationDate != nil {
			rotated = e.RotationDate.Format(time.RFC3339) + " " + e.RotationType
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.KeyMaterialId, e.KeyMaterialState, dash(e.ImportState), expires, rotated, dash(e.KeyMaterialDescription))
	}
	return tw.Flush()
}

func (k *keysCmd) scheduleDeletion(r keyRef) error {
	d := int32(k.f.days)
	out, err := r.conn.api.ScheduleKeyDeletion(k.ctx, &kms.ScheduleKeyDeletionInput{KeyId: r.m.KeyId, PendingWindowInDays: &d})
	if err != nil {
		return kmsHint(err, r.ref)
	}
	return k.done(out, "key %s is unusable from now on and will be destroyed on %s; undo with \"envelope keys cancel-deletion %s\"",
		r.name(), out.DeletionDate.Format("2006-01-02"), r.ref)
}

func (k *keysCmd) cancelDeletion(r keyRef) error {
	out, err := r.conn.api.CancelKeyDeletion(k.ctx, &kms.CancelKeyDeletionInput{KeyId: r.m.KeyId})
	if err != nil {
		return kmsHint(err, r.ref)
	}
	return k.done(out, "deletion of key %s cancelled; the key is disabled: enable it with \"envelope keys enable %s\"", r.name(), r.ref)
}

// aliasSet runs alias create or alias update (sub).
func (k *keysCmd) aliasSet(sub string, args []string) error {
	if err := nargs("alias "+sub, args, 2, "alias/NAME and KEY"); err != nil {
		return err
	}
	if !strings.HasPrefix(args[0], "alias/") {
		return usageErrorf("alias name %q: alias names start with alias/", args[0])
	}
	r, err := k.resolve(args[1])
	if err != nil {
		return err
	}
	var out any
	if sub == "create" {
		out, err = r.conn.api.CreateAlias(k.ctx, &kms.CreateAliasInput{AliasName: args[0], TargetKeyId: r.m.KeyId})
	} else {
		out, err = r.conn.api.UpdateAlias(k.ctx, &kms.UpdateAliasInput{AliasName: args[0], TargetKeyId: r.m.KeyId})
	}
	if err != nil {
		return kmsHint(err, args[0])
	}
	return k.done(out, "alias %s → key %s", args[0], r.m.KeyId)
}

func (k *keysCmd) aliasDelete(args []string) error {
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
}

func (k *keysCmd) aliasList(args []string) error {
	if err := nargs("alias list", args, 0, "no arguments"); err != nil {
		return err
	}
	conn, err := k.conn(false)
	if err != nil {
		return err
	}
	keyID := ""
	if k.f.key != "" {
		r, err := k.resolve(k.f.key)
		if err != nil {
			return err
		}
		keyID = r.m.KeyId
	}
	all, err := k.aliases(conn, keyID)
	if err != nil {
		return err
	}
	if k.f.json {
		return k.printJSON(&kms.ListAliasesOutput{Aliases: all})
	}
	tw := tabwriter.NewWriter(k.c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALIAS\tKEY ID")
	for _, a := range all {
		fmt.Fprintf(tw, "%s\t%s\n", a.AliasName, a.TargetKeyId)
	}
	return tw.Flush()
}

func (k *keysCmd) publicKey(r keyRef) error {
	out, err := r.conn.api.GetPublicKey(k.ctx, &kms.GetPublicKeyInput{KeyId: r.m.KeyId})
	if err != nil {
		return kmsHint(err, r.ref)
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

// tag runs tag or untag (cmd): KEY and at least one tag.
func (k *keysCmd) tag(cmd string, args []string) error {
	if len(args) < 2 {
		return usageErrorf("keys %s takes KEY and at least one tag; see \"envelope keys --help\"", cmd)
	}
	r, err := k.resolve(args[0])
	if err != nil {
		return err
	}
	if cmd == "untag" {
		out, err := r.conn.api.UntagResource(k.ctx, &kms.UntagResourceInput{KeyId: r.m.KeyId, TagKeys: args[1:]})
		if err != nil {
			return kmsHint(err, r.ref)
		}
		return k.done(out, "untagged key %s", r.name())
	}
	in := &kms.TagResourceInput{KeyId: r.m.KeyId}
	for _, t := range args[1:] {
		name, value, ok := strings.Cut(t, "=")
		if !ok || name == "" {
			return usageErrorf("tag %q: want name=value", t)
		}
		in.Tags = append(in.Tags, kms.Tag{Key: name, Value: value})
	}
	out, err := r.conn.api.TagResource(k.ctx, in)
	if err != nil {
		return kmsHint(err, r.ref)
	}
	return k.done(out, "tagged key %s", r.name())
}

func (k *keysCmd) listTags(r keyRef) error {
	all, err := listAll(func(marker string) ([]kms.Tag, string, error) {
		out, err := r.conn.api.ListResourceTags(k.ctx, &kms.ListResourceTagsInput{KeyId: r.m.KeyId, Marker: marker})
		if err != nil {
			return nil, "", kmsHint(err, r.ref)
		}
		return out.Tags, nextMarker(out.Truncated, out.NextMarker), nil
	})
	if err != nil {
		return err
	}
	if k.f.json {
		return k.printJSON(&kms.ListResourceTagsOutput{Tags: all})
	}
	tw := tabwriter.NewWriter(k.c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TAG\tVALUE")
	for _, t := range all {
		fmt.Fprintf(tw, "%s\t%s\n", t.Key, t.Value)
	}
	return tw.Flush()
}

// defaultUsage is the usage keys create gives a spec when --usage is not
// given: the only or first one AWS allows it (the KMS itself defaults to
// ENCRYPT_DECRYPT, which most key pairs and HMAC keys do not take).
func defaultUsage(spec string) string {
	switch {
	case strings.HasPrefix(spec, "HMAC_"):
		return kms.UsageGenerateVerifyMac
	case strings.HasPrefix(spec, "ECC_"), strings.HasPrefix(spec, "ML_DSA_"):
		return kms.UsageSignVerify
	}
	return ""
}
