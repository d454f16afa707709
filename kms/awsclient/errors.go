package awsclient

import (
	"errors"
	"strconv"
	"strings"

	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/envelopekms/envelope/kms"
)

// RequestError is a call that got no KMS answer: the endpoint could not be
// reached, the call timed out or was cancelled, or the response was not an
// AWS KMS API response. Errors the KMS answers with are [*kms.Error]
// instead.
type RequestError struct {
	// Operation is the KMS operation, such as "Encrypt".
	Operation string
	// Endpoint is the endpoint URL, or "AWS KMS in REGION".
	Endpoint string
	// StatusCode is the HTTP status of the response, 0 if none arrived.
	StatusCode int
	// Err is the SDK's error.
	Err error
}

// Error says which operation on which endpoint failed, and why.
func (e *RequestError) Error() string {
	var b strings.Builder
	b.WriteString("awsclient: ")
	b.WriteString(e.Operation)
	b.WriteString(" on ")
	b.WriteString(e.Endpoint)
	b.WriteString(": ")
	if e.StatusCode != 0 {
		b.WriteString("HTTP ")
		b.WriteString(strconv.Itoa(e.StatusCode))
		b.WriteString(": ")
	}
	var de *smithy.DeserializationError
	if e.StatusCode >= 200 && e.StatusCode < 300 && errors.As(e.Err, &de) {
		// The decoder's detail may quote the body, which may hold key
		// material; say only what went wrong.
		b.WriteString("the response body is not a valid " + e.Operation + " response")
	} else {
		b.WriteString(cause(e.Err))
	}
	return b.String()
}

// Unwrap returns the SDK's error.
func (e *RequestError) Unwrap() error { return e.Err }

// unknownError is the code the SDK gives an error response that names no
// error type: not an AWS error at all.
const unknownError = "UnknownError"

// cause describes err without the SDK's wrapping ("operation error KMS:
// Encrypt, https response error StatusCode: 0, RequestID: , …"), which
// RequestError.Error says more briefly.
func cause(err error) string {
	var re *smithyhttp.ResponseError
	var oe *smithy.OperationError
	switch {
	case errors.As(err, &re) && re.Err != nil:
		err = re.Err
	case errors.As(err, &oe) && oe.Err != nil:
		err = oe.Err
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == unknownError {
		return "the response names no AWS error type; is this an AWS KMS API endpoint?"
	}
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// fail converts an error of the SDK: an AWS error response to a
// [*kms.Error], the SDK's own input validation to a ValidationException,
// anything else to a [*RequestError].
func (c *Client) fail(op string, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() != "" && apiErr.ErrorCode() != unknownError {
		msg := apiErr.ErrorMessage()
		if msg == unknownError { // the SDK's placeholder for a missing message
			msg = ""
		}
		return &kms.Error{Code: apiErr.ErrorCode(), Message: msg, KeyARN: keyARNIn(msg)}
	}
	var invalid smithy.InvalidParamsError
	if errors.As(err, &invalid) {
		var msgs []string
		for _, e := range invalid.Errs() {
			msgs = append(msgs, strings.TrimSuffix(e.Error(), "."))
		}
		return &kms.Error{Code: kms.CodeValidation, Message: strings.Join(msgs, "; ")}
	}
	re := &RequestError{Operation: op, Endpoint: c.endpoint, Err: err}
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) {
		if r := resp.HTTPResponse(); r != nil && r.Response != nil {
			re.StatusCode = r.StatusCode
		}
	}
	return re
}

// keyARNIn returns the first key ARN msg names, or "": the AWS API carries
// the key an error is about only in its message (AWS KMS and envelope's
// server name it there, as "arn:…:key/ID").
func keyARNIn(msg string) string {
	for _, f := range strings.Fields(msg) {
		f = strings.Trim(f, `.,;:'"()`)
		if strings.HasPrefix(f, "arn:") && strings.Contains(f, ":key/") {
			return f
		}
	}
	return ""
}
