// Package awsclient is envelope's KMS over the network: a [Client] that
// implements [kms.API] by calling an AWS-KMS-API endpoint through
// aws-sdk-go-v2. The endpoint is either envelope's own server
// ("envelope serve", see [NewEndpoint]) or AWS KMS itself ([NewAWS]), so
// keyrings and the CLI work unchanged against the embedded KMS, a remote
// envelope server, or AWS.
//
// # Errors
//
// An error the KMS answers with becomes a [*kms.Error] whose Code is the AWS
// exception name (NotFoundException, DisabledException, …) and whose Message
// is the server's, so [kms.CodeOf] and errors.Is with the kms sentinels work
// the same for local and remote KMS. Its KeyARN is the first key ARN the
// message names, if any: the wire carries the key no other way. A request the SDK refuses before
// sending it (a required field missing) is a ValidationException, as the
// in-process service would report it.
//
// Every other failure — the endpoint unreachable, a timeout, a cancelled
// context, a response that is not an AWS error — is a [*RequestError] that
// names the operation and the endpoint and wraps the SDK's error, so that
// errors.Is(err, context.Canceled) works. Such errors are not [*kms.Error],
// and [kms.CodeOf] reports them as KMSInternalException. No error text holds
// request bodies, plaintext or credentials.
//
// # Conversion
//
// Inputs and outputs are envelope's structs, whose fields mirror AWS KMS;
// the SDK's pointers, enums and timestamps are converted field by field. An
// empty string in an optional input field means "not set" and is not sent;
// a nil input is an empty request.
// Enum values pass through as strings in both directions, unchecked, so
// values newer than this SDK still work. Response fields envelope's structs
// do not carry (encapsulation algorithms, custom key store details, …) are
// dropped.
//
// # Dependencies
//
// This package pulls in aws-sdk-go-v2. Keep it out of the core packages:
// only the CLI imports it, so users who want the library or the embedded
// KMS do not carry a cloud SDK.
package awsclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/envelopekms/envelope/kms"
)

// Client is a [kms.API] over an AWS-KMS-API endpoint. It is safe for
// concurrent use.
type Client struct {
	api      *awskms.Client
	endpoint string // how errors name the endpoint
}

var _ kms.API = (*Client)(nil)

// New returns a Client that makes its calls through client, configured by
// the caller. client must not be nil.
func New(client *awskms.Client) *Client {
	o := client.Options()
	endpoint := "AWS KMS"
	switch {
	case o.BaseEndpoint != nil && *o.BaseEndpoint != "":
		endpoint = redact(*o.BaseEndpoint)
	case o.Region != "":
		endpoint = "AWS KMS in " + o.Region
	}
	return &Client{api: client, endpoint: endpoint}
}

// SDK returns the aws-sdk-go-v2 client the Client calls, for operations
// that [kms.API] does not have.
func (c *Client) SDK() *awskms.Client { return c.api }

// Endpoint returns how the Client names its endpoint in errors: the
// endpoint URL, or "AWS KMS in REGION" when the SDK resolves it.
func (c *Client) Endpoint() string { return c.endpoint }

// An Option configures [NewEndpoint] and [NewAWS].
type Option func(*options)

type options struct {
	region     string
	creds      aws.CredentialsProvider
	httpClient *http.Client
	sdk        []func(*awskms.Options)
	err        error
}

// WithRegion sets the region requests are signed for (and, for [NewAWS],
// sent to), instead of the one the AWS configuration chain finds
// (AWS_REGION, the shared config file). An empty region is ignored.
func WithRegion(region string) Option {
	return func(o *options) {
		if region != "" {
			o.region = region
		}
	}
}

// WithCredentials signs requests with a static access key instead of the
// AWS credential chain: for tests, and for the root credentials an envelope
// server generates. Both values must be non-empty.
func WithCredentials(accessKeyID, secretAccessKey string) Option {
	return func(o *options) {
		if accessKeyID == "" || secretAccessKey == "" {
			o.err = errors.New("awsclient: WithCredentials needs a non-empty access key id and secret access key")
			return
		}
		o.creds = credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, "")
	}
}

// WithHTTPClient sends KMS requests through client (timeouts, proxies, TLS
// roots) instead of the SDK's default HTTP client; client's own TLS settings
// then apply, not AWS_CA_BUNDLE. Requests of the credential chain itself
// (SSO, STS, instance metadata) keep the SDK's client. A nil client is
// ignored.
func WithHTTPClient(client *http.Client) Option {
	return func(o *options) {
		if client != nil {
			o.httpClient = client
		}
	}
}

// WithSDKOptions applies fns to the SDK client's options after everything
// else, for settings this package has no Option for, such as the retryer:
//
//	awsclient.WithSDKOptions(func(o *awskms.Options) { o.Retryer = aws.NopRetryer{} })
func WithSDKOptions(fns ...func(*awskms.Options)) Option {
	return func(o *options) { o.sdk = append(o.sdk, fns...) }
}

// NewEndpoint returns a Client for the AWS-KMS-API endpoint at the URL
// endpoint, such as an envelope server ("http://127.0.0.1:8500"). The URL
// must have the scheme http or https and a host; it may have a path, but no
// user info, query or fragment.
//
// Credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, the shared credentials and config files, …) unless
// [WithCredentials] gives them. The region comes from the chain or
// [WithRegion], and is [kms.DefaultRegion] (the server's default) when
// neither names one.
func NewEndpoint(ctx context.Context, endpoint string, opts ...Option) (*Client, error) {
	if err := checkEndpoint(endpoint); err != nil {
		return nil, err
	}
	o, cfg, err := load(ctx, opts, true)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = kms.DefaultRegion
	}
	fns := append([]func(*awskms.Options){func(ko *awskms.Options) {
		ko.BaseEndpoint = aws.String(endpoint)
	}}, o.sdk...)
	return New(awskms.NewFromConfig(cfg, fns...)), nil
}

// NewAWS returns a Client for AWS KMS itself, configured by the AWS
// configuration chain (credentials, region, and endpoint overrides such as
// AWS_ENDPOINT_URL_KMS) and opts. It fails if no region is configured.
func NewAWS(ctx context.Context, opts ...Option) (*Client, error) {
	o, cfg, err := load(ctx, opts, false)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		return nil, errors.New("awsclient: no AWS region configured; set AWS_REGION (or region in ~/.aws/config), or use WithRegion")
	}
	return New(awskms.NewFromConfig(cfg, o.sdk...)), nil
}

// load applies opts and loads the AWS configuration. For an endpoint of
// our own (not AWS), instance metadata is never asked for credentials or a
// region: that lookup would leave the machine for a link-local address, and
// an envelope server's credentials do not live there.
func load(ctx context.Context, opts []Option, endpoint bool) (*options, aws.Config, error) {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	if o.err != nil {
		return nil, aws.Config{}, o.err
	}
	if o.httpClient != nil {
		// Set on the KMS client only, after loading: the loader refuses a
		// plain *http.Client when AWS_CA_BUNDLE is set.
		hc := o.httpClient
		o.sdk = append([]func(*awskms.Options){func(ko *awskms.Options) { ko.HTTPClient = hc }}, o.sdk...)
	}
	var lo []func(*config.LoadOptions) error
	if o.region != "" {
		lo = append(lo, config.WithRegion(o.region))
	}
	if o.creds != nil {
		lo = append(lo, config.WithCredentialsProvider(o.creds))
	}
	if endpoint {
		lo = append(lo, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, aws.Config{}, fmt.Errorf("awsclient: loading the AWS configuration: %w", err)
	}
	return o, cfg, nil
}

const endpointHint = "want http://HOST[:PORT] or https://HOST[:PORT], such as http://127.0.0.1:8500"

// checkEndpoint validates an endpoint URL.
func checkEndpoint(endpoint string) error {
	if endpoint == "" {
		return errors.New("awsclient: no endpoint URL given (" + endpointHint + ")")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("awsclient: endpoint %q is not a URL (%s)", endpoint, endpointHint)
	}
	shown := u.Redacted()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("awsclient: endpoint %q: the scheme must be http or https (%s)", shown, endpointHint)
	case u.Hostname() == "":
		return fmt.Errorf("awsclient: endpoint %q has no host (%s)", shown, endpointHint)
	case u.User != nil:
		return fmt.Errorf("awsclient: endpoint %q must not hold user info; give credentials with the AWS credential chain or WithCredentials", shown)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("awsclient: endpoint %q must not have a query or fragment", shown)
	}
	return nil
}

// redact hides the user info of a URL given to [New] through the SDK's
// options, which checkEndpoint never lets through.
func redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.User == nil {
		return endpoint
	}
	u.User = nil
	return u.String()
}
