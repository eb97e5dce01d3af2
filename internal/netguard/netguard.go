// Package netguard classifies network destinations dsrflow must never reach
// on a controller's behalf (SSRF): loopback, private, link-local, CGNAT,
// multicast, reserved and cloud metadata addresses, and localhost names. The
// API's intake and the callback sender use the same rules, so a URL refused
// at delivery is refused when it is submitted.
package netguard

import (
	"net/netip"
	"strings"
)

// ForbiddenHost returns why the host of a URL may not be reached, or "" when
// it may: a literal address is classified by Forbidden; localhost (and
// *.localhost) and the cloud metadata service's names are refused by name.
// Other names pass here and are checked on the address actually dialled.
func ForbiddenHost(host string) string {
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case name == "localhost", strings.HasSuffix(name, ".localhost"):
		return "loopback"
	case name == "metadata.google.internal", name == "metadata":
		return "cloud metadata"
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		return Forbidden(ip)
	}
	return ""
}

// Forbidden returns why ip may not be reached (such as "loopback" or
// "cloud metadata"), or "" when it may.
func Forbidden(ip netip.Addr) string {
	ip = ip.WithZone("").Unmap()
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip == netip.MustParseAddr("169.254.169.254"), ip == netip.MustParseAddr("fd00:ec2::254"):
		return "cloud metadata"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, r := range reservedRanges() {
		if r.prefix.Contains(ip) {
			return r.why
		}
	}
	// NAT64 (RFC 6052) embeds an IPv4 address in its last 32 bits.
	if netip.MustParsePrefix("64:ff9b::/96").Contains(ip) {
		b := ip.As16()
		return Forbidden(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	return ""
}

type reservedRange struct {
	prefix netip.Prefix
	why    string
}

func reservedRanges() []reservedRange {
	return []reservedRange{
		{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
		{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
		{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},
		{netip.MustParsePrefix("198.18.0.0/15"), "reserved"},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
		{netip.MustParsePrefix("fec0::/10"), "site-local"},
	}
}
