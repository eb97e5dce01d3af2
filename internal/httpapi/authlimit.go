package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// Authentication failures are throttled per client address, before any
// credential is looked at: each failure takes a token from the address's
// bucket (authFailureBurst, refilled one per authFailureEvery), and an
// address with an empty bucket is answered 429 whatever it sends. IPv6
// clients are counted per /64, as one host usually holds the whole prefix.
// The address is the connection's: behind a reverse proxy every client
// shares the proxy's budget.
const (
	authFailureBurst = 10
	authFailureEvery = 6 * time.Second
	// authFailureTracked bounds the addresses remembered: refilled buckets
	// are forgotten first, and while all are in use new addresses are not counted.
	authFailureTracked = 10000
)

type failureLimits struct {
	mu      sync.Mutex
	every   time.Duration
	burst   int
	buckets map[netip.Prefix]*rate.Limiter
}

func newFailureLimits(every time.Duration, burst int) *failureLimits {
	return &failureLimits{every: every, burst: burst, buckets: map[netip.Prefix]*rate.Limiter{}}
}

// clientPrefix is the address a request is counted under; ok is false when
// the remote address cannot be parsed (then it is not throttled here).
func clientPrefix(r *http.Request) (netip.Prefix, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}, false
	}
	ip = ip.WithZone("").Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// wait returns how long the client must wait before its credentials are
// examined again, or 0.
func (f *failureLimits) wait(r *http.Request) time.Duration {
	p, ok := clientPrefix(r)
	if !ok {
		return 0
	}
	f.mu.Lock()
	l := f.buckets[p]
	f.mu.Unlock()
	if l == nil {
		return 0
	}
	tokens := l.Tokens()
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(f.every))
}

// failed records one authentication failure of the client.
func (f *failureLimits) failed(r *http.Request) {
	p, ok := clientPrefix(r)
	if !ok {
		return
	}
	f.mu.Lock()
	l := f.buckets[p]
	if l == nil {
		if len(f.buckets) >= authFailureTracked {
			f.forgetFull()
		}
		if len(f.buckets) >= authFailureTracked {
			// Memory stays bounded; whoever fails from this many addresses
			// at once has addresses to spare anyway.
			f.mu.Unlock()
			return
		}
		l = rate.NewLimiter(rate.Every(f.every), f.burst)
		f.buckets[p] = l
	}
	f.mu.Unlock()
	l.Allow()
}

// forgetFull drops the buckets that have refilled completely (f.mu held).
func (f *failureLimits) forgetFull() {
	for p, l := range f.buckets {
		if l.Tokens() >= float64(f.burst) {
			delete(f.buckets, p)
		}
	}
}

// throttled answers 429 with Retry-After when the client has used up its
// authentication failures; call it before examining any credential.
func (s *Server) throttled(w http.ResponseWriter, r *http.Request) bool {
	wait := s.failures.wait(r)
	if wait <= 0 {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	s.writeError(w, opendsr.TooManyRequests())
	return true
}
