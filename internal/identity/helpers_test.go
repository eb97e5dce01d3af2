package identity_test

import "fmt"

// fmtV prints v as a log line would.
func fmtV(v any) string { return fmt.Sprintf("%v %+v", v, v) }
