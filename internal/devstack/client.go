package devstack

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// apiClient is the HTTP client tests use against a Stack's API.
var apiClient = &http.Client{Timeout: 30 * time.Second}

// Response is one API answer.
type Response struct {
	Code      int
	Body      []byte
	Signature string
}

// Call sends a request to the stack's API as the test controller.
func (s *Stack) Call(method, path string, body any) (Response, error) {
	return s.call(APIToken, method, path, body)
}

// CallAsOperator sends a request to an operator route (resolve, retry) as
// the test operator, for the test controller's request.
func (s *Stack) CallAsOperator(method, path string, body any) (Response, error) {
	return s.call(OperatorToken, method, path+"?controller_id="+Controller, body)
}

func (s *Stack) call(token, method, path string, body any) (Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Response{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.APIURL+path, rd)
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Response{Code: resp.StatusCode, Body: b, Signature: resp.Header.Get("X-OpenDSR-Signature")}, err
}

// NewRequestID returns a random lowercase UUID v4.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Erasure is an OpenDSR erasure body for a customer id, skipping the waiting period.
func Erasure(id, regulation, customer string) map[string]any {
	return map[string]any{
		"subject_request_id":   id,
		"subject_request_type": "erasure",
		"regulation":           regulation,
		"submitted_time":       time.Now().UTC().Format(time.RFC3339),
		"api_version":          "1.0",
		"subject_identities": []map[string]string{
			{"identity_type": "controller_customer_id", "identity_value": customer, "identity_format": "raw"},
		},
		"extensions": map[string]any{"localhost": map[string]any{"skip_waiting_period": true}},
	}
}
