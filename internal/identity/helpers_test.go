package identity_test

import (
	"fmt"
	"testing"

	"github.com/dsrflow/dsrflow/internal/keyring"
)

// owner is the controller the tests' profiles belong to.
const owner = "acme"

// fmtV prints v as a log line would.
func fmtV(v any) string { return fmt.Sprintf("%v %+v", v, v) }

// testRing returns a fresh key ring for the suppression list.
func testRing(t testing.TB) *keyring.Ring {
	t.Helper()
	spec, err := keyring.Generate("k1")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}
