package awsclient_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsclient"
)

// The Client implements every operation of kms.API.
var _ kms.API = (*awsclient.Client)(nil)

// isolate keeps the developer's AWS configuration (environment, shared
// files, instance metadata) out of a test.
func isolate(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_RETRY_MAX_ATTEMPTS", "AWS_ROLE_ARN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CA_BUNDLE",
	} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// noRetries makes failures fast.
var noRetries = awsclient.WithSDKOptions(func(o *awskms.Options) { o.Retryer = aws.NopRetryer{} })

// newClient returns a client of the fake signing with AKID/SECRET.
func newClient(t *testing.T, f *fakeKMS, opts ...awsclient.Option) *awsclient.Client {
	t.Helper()
	isolate(t)
	opts = append([]awsclient.Option{awsclient.WithCredentials("AKID", "SECRET"), noRetries}, opts...)
	c, err := awsclient.NewEndpoint(t.Context(), f.URL, opts...)
	if err != nil {
		t.Fatalf("NewEndpoint(%q) err = %v, want nil", f.URL, err)
	}
	return c
}

// operations returns the names of kms.API's methods.
func operations() []string {
	api := reflect.TypeFor[kms.API]()
	names := make([]string, api.NumMethod())
	for i := range names {
		names[i] = api.Method(i).Name
	}
	return names
}

// call calls the operation name of api with in (a pointer to its input
// type, or nil) and returns its output and error.
func call(ctx context.Context, api kms.API, name string, in any) (any, error) {
	m := reflect.ValueOf(api).MethodByName(name)
	arg := reflect.Zero(m.Type().In(1))
	if in != nil {
		arg = reflect.ValueOf(in)
	}
	res := m.Call([]reflect.Value{reflect.ValueOf(ctx), arg})
	err, _ := res[1].Interface().(error)
	return res[0].Interface(), err
}

var testTime = time.Unix(1700000000, 500_000_000).UTC() // exact in epoch seconds as a float

// fill sets every field of the struct v points to, recursively, to a
// non-zero value derived from the field's name, so that a field mapped to
// the wrong place or not at all shows.
func fill(v reflect.Value) {
	v = v.Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		f.Set(value(f.Type(), name))
	}
}

var timestampType = reflect.TypeFor[kms.Timestamp]()

func value(t reflect.Type, name string) reflect.Value {
	v := reflect.New(t).Elem()
	switch {
	case t == timestampType:
		v.Set(reflect.ValueOf(kms.Timestamp{Time: testTime}))
	case t.Kind() == reflect.String:
		v.SetString(name)
	case t.Kind() == reflect.Bool:
		v.SetBool(true)
	case t.Kind() == reflect.Int32:
		v.SetInt(int64(7 + len(name)))
	case t.Kind() == reflect.Pointer:
		v.Set(reflect.New(t.Elem()))
		v.Elem().Set(value(t.Elem(), name))
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		v.SetBytes([]byte("blob " + name))
	case t.Kind() == reflect.Slice:
		v.Set(reflect.Append(v, value(t.Elem(), name)))
	case t.Kind() == reflect.Map:
		v.Set(reflect.MakeMap(t))
		v.SetMapIndex(reflect.ValueOf(name), reflect.ValueOf("value of "+name))
	case t.Kind() == reflect.Struct:
		fill(v.Addr())
	default:
		panic("fill: unhandled type " + t.String())
	}
	return v
}

// wire returns v as AWS's JSON would carry it: envelope's structs carry
// AWS's field names and encodings (blobs base64, timestamps epoch seconds).
func wire(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEveryOperation sends every operation with every input field set and
// answers with every output field set: each input field must arrive under
// its AWS name and encoding, and each output field must come back.
func TestEveryOperation(t *testing.T) {
	f := newFakeKMS(t)
	c := newClient(t, f)
	api := reflect.TypeFor[kms.API]()
	for _, name := range operations() {
		t.Run(name, func(t *testing.T) {
			m, _ := api.MethodByName(name)
			in := reflect.New(m.Type.In(1).Elem())
			fill(in)
			want := reflect.New(m.Type.Out(0).Elem())
			fill(want)
			f.setReply(func(string, map[string]any) fakeReply { return ok(want.Interface()) })

			got, err := call(t.Context(), c, name, in.Interface())
			if err != nil {
				t.Fatalf("%s err = %v, want nil", name, err)
			}
			req := f.last(t)
			if req.Op != name {
				t.Errorf("X-Amz-Target operation = %q, want %q", req.Op, name)
			}
			if ct := req.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
				t.Errorf("Content-Type = %q, want application/x-amz-json-1.1", ct)
			}
			if wantBody := wire(t, in.Interface()); !reflect.DeepEqual(req.Body, wantBody) {
				t.Errorf("request body:\n got %v\nwant %v", req.Body, wantBody)
			}
			if !reflect.DeepEqual(got, want.Interface()) {
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(want.Interface())
				t.Errorf("output:\n got %s\nwant %s", gb, wb)
			}
		})
	}
}

// TestNilInputAndEmptyOutput calls every operation with a nil input against
// a KMS that answers {}: no panic; either a ValidationException (a
// required field is missing) or an output whose lists are empty, not nil,
// so that they encode as [] like the in-process service's.
func TestNilInputAndEmptyOutput(t *testing.T) {
	f := newFakeKMS(t)
	c := newClient(t, f)
	for _, name := range operations() {
		t.Run(name, func(t *testing.T) {
			out, err := call(t.Context(), c, name, nil)
			if err != nil {
				var ke *kms.Error
				if !errors.As(err, &ke) || ke.Code != kms.CodeValidation {
					t.Fatalf("%s(nil) err = %v, want nil or a ValidationException", name, err)
				}
				return
			}
			if reflect.ValueOf(out).IsNil() {
				t.Fatalf("%s(nil) = nil, nil", name)
			}
			v := reflect.ValueOf(out).Elem()
			for i := range v.NumField() {
				f, sf := v.Field(i), v.Type().Field(i)
				isList := f.Kind() == reflect.Slice && f.Type().Elem().Kind() != reflect.Uint8
				if isList && !strings.Contains(sf.Tag.Get("json"), "omitempty") && f.IsNil() {
					t.Errorf("%s(nil) output %s is nil, want an empty list", name, sf.Name)
				}
			}
		})
	}
}

func TestRequestEncoding(t *testing.T) {
	f := newFakeKMS(t)
	c := newClient(t, f)
	ctx := t.Context()
	plaintext := []byte{0x00, 0x01, 0xfe, 0xff, 'h', 'i'}
	tests := []struct {
		name string
		call func() error
		op   string
		want map[string]any
	}{
		{"Encrypt", func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: "alias/app", Plaintext: plaintext,
				EncryptionContext: map[string]string{"purpose": "test"}, GrantTokens: []string{"gt"}})
			return err
		}, "Encrypt", map[string]any{
			"KeyId":             "alias/app",
			"Plaintext":         base64.StdEncoding.EncodeToString(plaintext),
			"EncryptionContext": map[string]any{"purpose": "test"},
			"GrantTokens":       []any{"gt"},
		}},
		{"Decrypt without KeyId", func() error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("ciphertext")})
			return err
		}, "Decrypt", map[string]any{"CiphertextBlob": "Y2lwaGVydGV4dA=="}},
		{"Decrypt DryRun", func() error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte{1}, KeyId: "k", DryRun: true, EncryptionAlgorithm: "RSAES_OAEP_SHA_256"})
			return err
		}, "Decrypt", map[string]any{"CiphertextBlob": "AQ==", "KeyId": "k", "DryRun": true, "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}},
		{"GenerateDataKey NumberOfBytes", func() error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: "k", NumberOfBytes: aws.Int32(32)})
			return err
		}, "GenerateDataKey", map[string]any{"KeyId": "k", "NumberOfBytes": 32.0}},
		{"GenerateDataKey KeySpec", func() error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: "k", KeySpec: "AES_256"})
			return err
		}, "GenerateDataKey", map[string]any{"KeyId": "k", "KeySpec": "AES_256"}},
		{"CreateKey", func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: "d", KeySpec: "RSA_3072", KeyUsage: "ENCRYPT_DECRYPT",
				Tags: []kms.Tag{{Key: "team", Value: ""}}, MultiRegion: aws.Bool(false)})
			return err
		}, "CreateKey", map[string]any{"Description": "d", "KeySpec": "RSA_3072", "KeyUsage": "ENCRYPT_DECRYPT",
			"Tags": []any{map[string]any{"TagKey": "team", "TagValue": ""}}, "MultiRegion": false}},
		{"UpdateKeyDescription clears", func() error {
			_, err := c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: "k"})
			return err
		}, "UpdateKeyDescription", map[string]any{"KeyId": "k", "Description": ""}},
		{"ScheduleKeyDeletion", func() error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: "k", PendingWindowInDays: aws.Int32(7)})
			return err
		}, "ScheduleKeyDeletion", map[string]any{"KeyId": "k", "PendingWindowInDays": 7.0}},
		{"ListAliases", func() error {
			_, err := c.ListAliases(ctx, &kms.ListAliasesInput{Limit: aws.Int32(10), Marker: "m"})
			return err
		}, "ListAliases", map[string]any{"Limit": 10.0, "Marker": "m"}},
		{"ListKeys", func() error {
			_, err := c.ListKeys(ctx, &kms.ListKeysInput{})
			return err
		}, "ListKeys", map[string]any{}},
		{"GetKeyPolicy default name", func() error {
			_, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: "k"})
			return err
		}, "GetKeyPolicy", map[string]any{"KeyId": "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			req := f.last(t)
			if req.Op != tt.op {
				t.Errorf("operation = %q, want %q", req.Op, tt.op)
			}
			if !reflect.DeepEqual(req.Body, tt.want) {
				t.Errorf("body:\n got %v\nwant %v", req.Body, tt.want)
			}
		})
	}
}

func TestResponseDecoding(t *testing.T) {
	f := newFakeKMS(t)
	c := newClient(t, f)
	ctx := t.Context()

	t.Run("DescribeKey", func(t *testing.T) {
		f.setReply(func(string, map[string]any) fakeReply {
			return fakeReply{Status: 200, Body: `{"KeyMetadata":{
				"AWSAccountId":"111122223333","KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab",
				"Arn":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
				"CreationDate":1.7000000005E9,"DeletionDate":1700086400,"Enabled":false,"Description":"",
				"KeyUsage":"ENCRYPT_DECRYPT","KeyState":"PendingDeletion","Origin":"AWS_KMS","KeyManager":"CUSTOMER",
				"CustomerMasterKeySpec":"SYMMETRIC_DEFAULT","KeySpec":"FUTURE_KEY_SPEC",
				"EncryptionAlgorithms":["SYMMETRIC_DEFAULT"],"SigningAlgorithms":["ECDSA_SHA_256"],
				"MultiRegion":false,"PendingDeletionWindowInDays":7,"FieldFromTheFuture":{"x":[1,2]}}}`}
		})
		out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: "k"})
		if err != nil {
			t.Fatalf("DescribeKey err = %v, want nil", err)
		}
		want := &kms.KeyMetadata{
			AWSAccountId: "111122223333",
			KeyId:        "1234abcd-12ab-34cd-56ef-1234567890ab",
			Arn:          "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
			CreationDate: &kms.Timestamp{Time: testTime},
			DeletionDate: &kms.Timestamp{Time: time.Unix(1700086400, 0).UTC()},
			KeyUsage:     "ENCRYPT_DECRYPT", KeyState: "PendingDeletion", Origin: "AWS_KMS", KeyManager: "CUSTOMER",
			CustomerMasterKeySpec: "SYMMETRIC_DEFAULT", KeySpec: "FUTURE_KEY_SPEC",
			EncryptionAlgorithms:        []string{"SYMMETRIC_DEFAULT"},
			SigningAlgorithms:           []string{"ECDSA_SHA_256"},
			PendingDeletionWindowInDays: aws.Int32(7),
		}
		if !reflect.DeepEqual(out.KeyMetadata, want) {
			t.Errorf("KeyMetadata:\n got %+v\nwant %+v", out.KeyMetadata, want)
		}
	})

	t.Run("Decrypt", func(t *testing.T) {
		f.setReply(func(string, map[string]any) fakeReply {
			return fakeReply{Status: 200, Body: `{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/k","Plaintext":"AAH+/2hp","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`}
		})
		out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte{1}})
		if err != nil {
			t.Fatalf("Decrypt err = %v, want nil", err)
		}
		want := &kms.DecryptOutput{KeyId: "arn:aws:kms:us-east-1:111122223333:key/k", Plaintext: []byte{0, 1, 0xfe, 0xff, 'h', 'i'}, EncryptionAlgorithm: "SYMMETRIC_DEFAULT"}
		if !reflect.DeepEqual(out, want) {
			t.Errorf("Decrypt = %+v, want %+v", out, want)
		}
	})

	t.Run("ListAliases", func(t *testing.T) {
		f.setReply(func(string, map[string]any) fakeReply {
			return fakeReply{Status: 200, Body: `{"Aliases":[
				{"AliasName":"alias/a","AliasArn":"arn:aws:kms:us-east-1:111122223333:alias/a","TargetKeyId":"k","CreationDate":1700000000,"LastUpdatedDate":1.7000000005E9},
				{"AliasName":"alias/aws/ebs","AliasArn":"arn:aws:kms:us-east-1:111122223333:alias/aws/ebs"}],
				"NextMarker":"next","Truncated":true}`}
		})
		out, err := c.ListAliases(ctx, nil)
		if err != nil {
			t.Fatalf("ListAliases err = %v, want nil", err)
		}
		want := &kms.ListAliasesOutput{Aliases: []kms.AliasListEntry{
			{AliasName: "alias/a", AliasArn: "arn:aws:kms:us-east-1:111122223333:alias/a", TargetKeyId: "k",
				CreationDate: &kms.Timestamp{Time: time.Unix(1700000000, 0).UTC()}, LastUpdatedDate: &kms.Timestamp{Time: testTime}},
			{AliasName: "alias/aws/ebs", AliasArn: "arn:aws:kms:us-east-1:111122223333:alias/aws/ebs"},
		}, NextMarker: "next", Truncated: true}
		if !reflect.DeepEqual(out, want) {
			t.Errorf("ListAliases = %+v, want %+v", out, want)
		}
	})
}

func TestErrors(t *testing.T) {
	f := newFakeKMS(t)
	c := newClient(t, f)
	tests := []struct {
		name    string
		op      string
		reply   fakeReply
		code    string
		message string
	}{
		{"body and header", "DescribeKey", awsError(400, "NotFoundException", "Key 'k' does not exist"),
			"NotFoundException", "Key 'k' does not exist"},
		{"namespaced in the body", "Decrypt", fakeReply{Status: 400,
			Body: `{"__type":"com.amazonaws.kms#InvalidCiphertextException","message":"bad ciphertext"}`},
			"InvalidCiphertextException", "bad ciphertext"},
		{"header only", "Encrypt", fakeReply{Status: 400, Header: map[string]string{"x-amzn-ErrorType": "DisabledException"},
			Body: `{"message":"key is disabled"}`}, "DisabledException", "key is disabled"},
		{"header with a URI suffix", "GenerateDataKey", fakeReply{Status: 400,
			Header: map[string]string{"x-amzn-ErrorType": "KMSInvalidStateException:http://internal.amazon.com/coral/com.amazonaws.kms/"},
			Body:   `{"message":"pending deletion"}`}, "KMSInvalidStateException", "pending deletion"},
		{"incorrect key", "Decrypt", awsError(400, "IncorrectKeyException", "wrong key"), "IncorrectKeyException", "wrong key"},
		{"not in the SDK's model", "Encrypt", awsError(400, "ValidationException", "Plaintext too long"), "ValidationException", "Plaintext too long"},
		{"authentication", "ListKeys", awsError(400, "UnrecognizedClientException", "The security token included in the request is invalid."),
			"UnrecognizedClientException", "The security token included in the request is invalid."},
		{"no message", "ListKeys", fakeReply{Status: 400, Body: `{"__type":"ThrottlingException"}`}, "ThrottlingException", ""},
		{"internal", "Decrypt", awsError(500, "KMSInternalException", "oops"), "KMSInternalException", "oops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.setReply(func(string, map[string]any) fakeReply { return tt.reply })
			in := reflect.New(reflect.ValueOf(c).MethodByName(tt.op).Type().In(1).Elem())
			fill(in)
			_, err := call(t.Context(), c, tt.op, in.Interface())
			var ke *kms.Error
			if !errors.As(err, &ke) {
				t.Fatalf("%s err = %v (%T), want a *kms.Error", tt.op, err, err)
			}
			if ke.Code != tt.code || ke.Message != tt.message {
				t.Errorf("%s err = %+v, want Code %q, Message %q", tt.op, ke, tt.code, tt.message)
			}
			if got := kms.CodeOf(err); got != tt.code {
				t.Errorf("kms.CodeOf = %q, want %q", got, tt.code)
			}
			if !errors.Is(err, &kms.Error{Code: tt.code}) {
				t.Errorf("errors.Is(err, &kms.Error{Code: %q}) = false", tt.code)
			}
		})
	}
	t.Run("sentinel", func(t *testing.T) {
		f.setReply(func(string, map[string]any) fakeReply { return awsError(400, "NotFoundException", "no") })
		_, err := c.DescribeKey(t.Context(), &kms.DescribeKeyInput{KeyId: "alias/missing"})
		if !errors.Is(err, kms.ErrKeyNotFound) {
			t.Errorf("DescribeKey err = %v, want errors.Is kms.ErrKeyNotFound", err)
		}
	})
	t.Run("key ARN", func(t *testing.T) {
		const arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		for msg, want := range map[string]string{
			arn + " is disabled.":                                              arn,
			"Key '" + arn + "' does not exist":                                 arn,
			"Alias arn:aws:kms:us-east-1:111122223333:alias/app is not found.": "",
			"key is disabled":                                                  "",
		} {
			f.setReply(func(string, map[string]any) fakeReply { return awsError(400, "DisabledException", msg) })
			_, err := c.Encrypt(t.Context(), &kms.EncryptInput{KeyId: "k", Plaintext: []byte("p")})
			var ke *kms.Error
			if !errors.As(err, &ke) || ke.KeyARN != want {
				t.Errorf("Encrypt answered %q: err = %#v, want a *kms.Error with KeyARN %q", msg, err, want)
			}
		}
	})
	t.Run("missing required field", func(t *testing.T) {
		n := f.count()
		_, err := c.Encrypt(t.Context(), &kms.EncryptInput{KeyId: "k"})
		if kms.CodeOf(err) != kms.CodeValidation || !strings.Contains(err.Error(), "Plaintext") {
			t.Errorf("Encrypt without Plaintext err = %v, want a ValidationException naming Plaintext", err)
		}
		if f.count() != n {
			t.Errorf("the request was sent")
		}
	})
}

// TestNotAnAWSResponse: responses that are not AWS KMS answers (a proxy's
// error page, a server that is not a KMS) are RequestErrors with the status,
// not kms.Errors, and do not echo the body.
func TestNotAnAWSResponse(t *testing.T) {
	f := newFakeKMS(t)
	c := newClient(t, f)
	const marker = "424242" // a number, to be a valid JSON value too
	tests := []struct {
		name   string
		reply  fakeReply
		status int
	}{
		{"proxy error page", fakeReply{Status: 502, Header: map[string]string{"Content-Type": "text/html"},
			Body: "<html>" + marker + "</html>"}, 502},
		{"empty 404", fakeReply{Status: 404}, 404},
		{"JSON without an error type", fakeReply{Status: 400, Body: `{"error":"` + marker + `"}`}, 400},
		{"200 that is not JSON", fakeReply{Status: 200, Body: marker}, 200},
		{"200 with a bad blob", fakeReply{Status: 200, Body: `{"CiphertextBlob":"` + marker + `!!"}`}, 200},
		{"200 with a wrongly typed field", fakeReply{Status: 200, Body: `{"CiphertextBlob":"AA==","KeyId":` + marker + `}`}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.setReply(func(string, map[string]any) fakeReply { return tt.reply })
			_, err := c.Encrypt(t.Context(), &kms.EncryptInput{KeyId: "k", Plaintext: []byte("p")})
			var ke *kms.Error
			if err == nil || errors.As(err, &ke) {
				t.Fatalf("Encrypt err = %v, want a non-KMS error", err)
			}
			var re *awsclient.RequestError
			if !errors.As(err, &re) {
				t.Fatalf("Encrypt err = %v (%T), want a *awsclient.RequestError", err, err)
			}
			if re.StatusCode != tt.status || re.Operation != "Encrypt" || re.Endpoint != f.URL {
				t.Errorf("RequestError = %+v, want status %d, Encrypt, %s", re, tt.status, f.URL)
			}
			if msg := err.Error(); !strings.Contains(msg, f.URL) || strings.Contains(msg, marker) {
				t.Errorf("err = %q, want it to name %s and not echo the body", msg, f.URL)
			}
		})
	}
}

func TestTransportError(t *testing.T) {
	f := newFakeKMS(t)
	c := newClient(t, f)
	f.Close()
	secret := []byte("attack at dawn")
	start := time.Now()
	_, err := c.Encrypt(t.Context(), &kms.EncryptInput{KeyId: "k", Plaintext: secret})
	if time.Since(start) > 5*time.Second {
		t.Errorf("Encrypt took %v against a closed server", time.Since(start))
	}
	var ke *kms.Error
	if err == nil || errors.As(err, &ke) {
		t.Fatalf("Encrypt err = %v, want a transport error, not a *kms.Error", err)
	}
	var re *awsclient.RequestError
	if !errors.As(err, &re) || re.Endpoint != f.URL || re.StatusCode != 0 {
		t.Errorf("Encrypt err = %#v, want a RequestError for %s without status", err, f.URL)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("Encrypt err = %v, want it to wrap a *net.OpError", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, f.URL) || !strings.Contains(msg, "Encrypt") {
		t.Errorf("err = %q, want it to name Encrypt and %s", msg, f.URL)
	}
	if strings.Contains(msg, string(secret)) || strings.Contains(msg, base64.StdEncoding.EncodeToString(secret)) {
		t.Errorf("err = %q holds the plaintext", msg)
	}
	t.Logf("transport error: %v", err)
}

func TestContext(t *testing.T) {
	f := newFakeKMS(t)
	c := newClient(t, f)
	f.setReply(func(string, map[string]any) fakeReply { return ok(struct{}{}) })

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
	var re *awsclient.RequestError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &re) {
		t.Errorf("GenerateRandom with a cancelled context err = %v, want a RequestError wrapping context.Canceled", err)
	}

	release := make(chan struct{})
	defer close(release)
	f.setReply(func(string, map[string]any) fakeReply { <-release; return ok(struct{}{}) })
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &re) || !strings.Contains(err.Error(), f.URL) {
		t.Errorf("GenerateRandom past its deadline err = %v, want a RequestError naming %s wrapping context.DeadlineExceeded", err, f.URL)
	}
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/kms/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=[0-9a-f]{64}$`)

func TestSigV4(t *testing.T) {
	describe := func(t *testing.T, f *fakeKMS, c *awsclient.Client) fakeRequest {
		t.Helper()
		if _, err := c.DescribeKey(t.Context(), &kms.DescribeKeyInput{KeyId: "k"}); err != nil {
			t.Fatalf("DescribeKey err = %v, want nil", err)
		}
		return f.last(t)
	}
	checkAuth := func(t *testing.T, req fakeRequest, akid, region string) {
		t.Helper()
		auth := req.Header.Get("Authorization")
		m := authRE.FindStringSubmatch(auth)
		if m == nil {
			t.Fatalf("Authorization = %q, want AWS4-HMAC-SHA256 Credential=%s/DATE/%s/kms/aws4_request, …", auth, akid, region)
		}
		if m[1] != akid || m[3] != region || !strings.HasPrefix(req.Header.Get("X-Amz-Date"), m[2]) {
			t.Errorf("Authorization = %q, X-Amz-Date %q, want access key %s, region %s", auth, req.Header.Get("X-Amz-Date"), akid, region)
		}
	}

	t.Run("static credentials, default region", func(t *testing.T) {
		f := newFakeKMS(t)
		c := newClient(t, f)
		checkAuth(t, describe(t, f, c), "AKID", "us-east-1")
	})
	t.Run("region from the environment", func(t *testing.T) {
		f := newFakeKMS(t)
		isolate(t)
		t.Setenv("AWS_REGION", "eu-west-1")
		c, err := awsclient.NewEndpoint(t.Context(), f.URL, awsclient.WithCredentials("AKID", "SECRET"), noRetries)
		if err != nil {
			t.Fatal(err)
		}
		checkAuth(t, describe(t, f, c), "AKID", "eu-west-1")
	})
	t.Run("WithRegion wins", func(t *testing.T) {
		f := newFakeKMS(t)
		isolate(t)
		t.Setenv("AWS_REGION", "eu-west-1")
		c, err := awsclient.NewEndpoint(t.Context(), f.URL, awsclient.WithCredentials("AKID", "SECRET"), awsclient.WithRegion("ap-south-1"), noRetries)
		if err != nil {
			t.Fatal(err)
		}
		checkAuth(t, describe(t, f, c), "AKID", "ap-south-1")
	})
	t.Run("credentials from the environment", func(t *testing.T) {
		f := newFakeKMS(t)
		f.secrets["ENVAKID"] = "ENVSECRET"
		isolate(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "ENVAKID")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET")
		c, err := awsclient.NewEndpoint(t.Context(), f.URL, noRetries)
		if err != nil {
			t.Fatal(err)
		}
		checkAuth(t, describe(t, f, c), "ENVAKID", "us-east-1")
	})
	t.Run("wrong secret", func(t *testing.T) {
		f := newFakeKMS(t)
		c := newClient(t, f, awsclient.WithCredentials("AKID", "NOT-THE-SECRET"))
		_, err := c.DescribeKey(t.Context(), &kms.DescribeKeyInput{KeyId: "k"})
		if kms.CodeOf(err) != "InvalidSignatureException" {
			t.Errorf("DescribeKey with a wrong secret err = %v, want InvalidSignatureException", err)
		}
		if strings.Contains(err.Error(), "NOT-THE-SECRET") {
			t.Errorf("err = %q holds the secret", err)
		}
	})
}

func TestEndpointValidation(t *testing.T) {
	isolate(t)
	bad := []struct{ endpoint, want string }{
		{"", "no endpoint URL"},
		{"127.0.0.1:8500", "not a URL"},
		{"localhost:8500", "scheme must be http or https"},
		{"ftp://kms.example.com", "scheme must be http or https"},
		{"http://", "no host"},
		{"http:///kms", "no host"},
		{"http://user:hunter2@127.0.0.1:8500", "user info"},
		{"http://127.0.0.1:8500/?x=1", "query or fragment"},
		{"http://127.0.0.1:8500/#top", "query or fragment"},
		{"http://127.0.0.1:port", "not a URL"},
	}
	for _, tt := range bad {
		c, err := awsclient.NewEndpoint(t.Context(), tt.endpoint, awsclient.WithCredentials("AKID", "SECRET"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewEndpoint(%q) = %v, %v; want an error containing %q", tt.endpoint, c, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("NewEndpoint(%q) err = %q shows the password", tt.endpoint, err)
		}
	}
	for _, endpoint := range []string{"http://127.0.0.1:8500", "https://kms.example.com", "HTTP://127.0.0.1:8500/", "http://[::1]:8500", "https://kms.example.com/prefix"} {
		c, err := awsclient.NewEndpoint(t.Context(), endpoint, awsclient.WithCredentials("AKID", "SECRET"))
		if err != nil {
			t.Errorf("NewEndpoint(%q) err = %v, want nil", endpoint, err)
			continue
		}
		if c.Endpoint() != endpoint {
			t.Errorf("NewEndpoint(%q).Endpoint() = %q", endpoint, c.Endpoint())
		}
	}
	if _, err := awsclient.NewEndpoint(t.Context(), "http://127.0.0.1:8500", awsclient.WithCredentials("AKID", "")); err == nil {
		t.Errorf("NewEndpoint with an empty secret err = nil, want an error")
	}
}

// TestEndpointPath: an endpoint with a path prefix (behind a reverse proxy)
// is called there and signed for it.
func TestEndpointPath(t *testing.T) {
	f := newFakeKMS(t)
	isolate(t)
	c, err := awsclient.NewEndpoint(t.Context(), f.URL+"/kms", awsclient.WithCredentials("AKID", "SECRET"), noRetries)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListKeys(t.Context(), nil); err != nil {
		t.Fatalf("ListKeys err = %v, want nil", err)
	}
}

func TestNew(t *testing.T) {
	f := newFakeKMS(t)
	sdk := awskms.New(awskms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		Retryer:      aws.NopRetryer{},
	})
	c := awsclient.New(sdk)
	if c.SDK() != sdk || c.Endpoint() != f.URL {
		t.Errorf("New: SDK() = %p, Endpoint() = %q; want %p, %q", c.SDK(), c.Endpoint(), sdk, f.URL)
	}
	f.setReply(func(string, map[string]any) fakeReply {
		return ok(map[string]any{"Keys": []any{map[string]any{"KeyId": "k", "KeyArn": "arn:aws:kms:us-east-1:111122223333:key/k"}}})
	})
	out, err := c.ListKeys(t.Context(), &kms.ListKeysInput{})
	if err != nil || len(out.Keys) != 1 || out.Keys[0].KeyArn != "arn:aws:kms:us-east-1:111122223333:key/k" {
		t.Errorf("ListKeys = %+v, %v", out, err)
	}
}

// TestHTTPS: an https endpoint with a private CA, trusted through
// AWS_CA_BUNDLE or through the caller's HTTP client (also when
// AWS_CA_BUNDLE is set, which the SDK's loader refuses to combine with a
// plain *http.Client).
func TestHTTPS(t *testing.T) {
	f := newFakeKMSTLS(t)
	isolate(t)
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
	if err := os.WriteFile(bundle, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}

	c, err := awsclient.NewEndpoint(t.Context(), f.URL, awsclient.WithCredentials("AKID", "SECRET"), noRetries)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListKeys(t.Context(), nil)
	var re *awsclient.RequestError
	if !errors.As(err, &re) {
		t.Errorf("ListKeys to an untrusted https endpoint err = %v, want a RequestError", err)
	}

	t.Setenv("AWS_CA_BUNDLE", bundle)
	for _, opts := range [][]awsclient.Option{nil, {awsclient.WithHTTPClient(f.Client())}} {
		opts = append(opts, awsclient.WithCredentials("AKID", "SECRET"), noRetries)
		c, err := awsclient.NewEndpoint(t.Context(), f.URL, opts...)
		if err != nil {
			t.Fatalf("NewEndpoint(%q) err = %v, want nil", f.URL, err)
		}
		if _, err := c.ListKeys(t.Context(), nil); err != nil {
			t.Errorf("ListKeys over https err = %v, want nil", err)
		}
	}
}

// roundTripFunc answers requests without a network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewAWS(t *testing.T) {
	t.Run("no region", func(t *testing.T) {
		isolate(t)
		_, err := awsclient.NewAWS(t.Context(), awsclient.WithCredentials("AKID", "SECRET"))
		if err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
			t.Errorf("NewAWS without a region err = %v, want one that mentions AWS_REGION", err)
		}
	})
	t.Run("regional endpoint", func(t *testing.T) {
		isolate(t)
		var got *http.Request
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
				Body: io.NopCloser(strings.NewReader(`{"KeyMetadata":{"KeyId":"k"}}`)), Request: r}, nil
		})}
		c, err := awsclient.NewAWS(t.Context(), awsclient.WithRegion("eu-west-2"), awsclient.WithCredentials("AKID", "SECRET"),
			awsclient.WithHTTPClient(hc), noRetries)
		if err != nil {
			t.Fatalf("NewAWS err = %v, want nil", err)
		}
		if c.Endpoint() != "AWS KMS in eu-west-2" {
			t.Errorf("Endpoint() = %q, want AWS KMS in eu-west-2", c.Endpoint())
		}
		out, err := c.DescribeKey(t.Context(), &kms.DescribeKeyInput{KeyId: "k"})
		if err != nil || out.KeyMetadata.KeyId != "k" {
			t.Fatalf("DescribeKey = %+v, %v", out, err)
		}
		if got.URL.Scheme != "https" || got.URL.Host != "kms.eu-west-2.amazonaws.com" {
			t.Errorf("request went to %s, want https://kms.eu-west-2.amazonaws.com", got.URL)
		}
	})
	t.Run("AWS_ENDPOINT_URL_KMS", func(t *testing.T) {
		f := newFakeKMS(t)
		isolate(t)
		t.Setenv("AWS_ENDPOINT_URL_KMS", f.URL)
		t.Setenv("AWS_REGION", "us-east-1")
		c, err := awsclient.NewAWS(t.Context(), awsclient.WithCredentials("AKID", "SECRET"), noRetries)
		if err != nil {
			t.Fatalf("NewAWS err = %v, want nil", err)
		}
		if _, err := c.ListKeys(t.Context(), nil); err != nil || f.count() != 1 {
			t.Errorf("ListKeys err = %v, requests %d; want nil, 1", err, f.count())
		}
	})
}
