package netguard

import (
	"net/netip"
	"testing"
)

func TestForbidden(t *testing.T) {
	blocked := []string{
		"127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1",
		"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fc00::1", "fd12:3456::1",
		"169.254.1.1", "169.254.169.254", "fe80::1", "fe80::1%eth0", "fd00:ec2::254",
		"0.0.0.0", "::", "0.1.2.3",
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff05::2",
		"100.64.0.1", "100.127.255.254",
		"255.255.255.255", "198.18.0.1", "192.0.0.170",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",
	}
	for _, s := range blocked {
		if Forbidden(netip.MustParseAddr(s)) == "" {
			t.Errorf("%s is allowed", s)
		}
	}
	allowed := []string{
		"93.184.215.14", "8.8.8.8", "100.63.255.255", "100.128.0.1", "172.32.0.1", "169.253.1.1",
		"2606:2800:21f:cb07:6820:80da:af6b:8b2c", "64:ff9b::5db8:d70e",
	}
	for _, s := range allowed {
		if why := Forbidden(netip.MustParseAddr(s)); why != "" {
			t.Errorf("%s refused as %s", s, why)
		}
	}
}

func TestForbiddenHost(t *testing.T) {
	for host, want := range map[string]string{
		"localhost": "loopback", "LOCALHOST.": "loopback", "api.localhost": "loopback",
		"127.0.0.1": "loopback", "[::1]": "loopback", "::1": "loopback", "10.0.0.8": "private",
		"169.254.169.254": "cloud metadata", "metadata.google.internal": "cloud metadata",
		"fe80::1%eth0":       "link-local",
		"controller.example": "", "93.184.215.14": "", "localhost.example.com": "",
	} {
		if got := ForbiddenHost(host); got != want {
			t.Errorf("ForbiddenHost(%q) = %q, want %q", host, got, want)
		}
	}
}
