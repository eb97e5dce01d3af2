package callback

import (
	"errors"
	"testing"
)

func TestCheckDial(t *testing.T) {
	if err := checkDial("tcp4", "93.184.215.14:443", nil); err != nil {
		t.Errorf("public address refused: %v", err)
	}
	for _, c := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:443"}, {"tcp6", "[::1]:443"}, {"tcp6", "[fe80::1%eth0]:443"},
		{"udp", "93.184.215.14:53"}, {"tcp", "not-an-address"},
	} {
		if err := checkDial(c.network, c.addr, nil); !errors.Is(err, ErrForbiddenDestination) {
			t.Errorf("%s %s: %v", c.network, c.addr, err)
		}
	}
}
