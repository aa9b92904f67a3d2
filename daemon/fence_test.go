package daemon_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/internal/daemontest"
)

// slowLeaseTransport delays the response to one renewal of a Lease, as a slow apiserver or
// network does after the write has been stored, and then fails every later request for
// that Lease, as a network partition does.
type slowLeaseTransport struct {
	next     http.RoundTripper
	path     string        // of the Lease
	hold     time.Duration // how long the armed renewal's response is held back
	mu       sync.Mutex
	armed    bool
	cut      bool
	sent     time.Time     // when the held renewal was sent
	released chan struct{} // closed once the held response has been returned
}

func (s *slowLeaseTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, s.path) {
		return s.next.RoundTrip(req)
	}
	s.mu.Lock()
	cut, hold := s.cut, s.armed && req.Method == http.MethodPut
	if hold {
		s.armed, s.sent = false, time.Now()
	}
	s.mu.Unlock()
	if cut {
		return nil, errors.New("network partition (test)")
	}
	resp, err := s.next.RoundTrip(req)
	if !hold {
		return resp, err
	}

	defer close(s.released)
	s.mu.Lock()
	s.cut = true
	s.mu.Unlock()
	select {
	case <-time.After(s.hold):
		return resp, err
	case <-req.Context().Done():
		if resp != nil {
			_ = resp.Body.Close()
		}
		return nil, req.Context().Err()
	}
}

func (s *slowLeaseTransport) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = true
}

func (s *slowLeaseTransport) sentAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// TestFenceCountsFromRenewalSent: another replica may take the Lease over LeaseDuration
// after it saw a renewal stored, which can be long before its response reaches the leader.
// So the fence must fail RenewDeadline after the last renewal was sent, even when the
// response came late.
func TestFenceCountsFromRenewalSent(t *testing.T) {
	name := uniqueName("lease")
	timing := daemon.LeaderElection{Namespace: "default", Name: name, Identity: "fence-a",
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 100 * time.Millisecond}
	transport := &slowLeaseTransport{path: "/namespaces/default/leases/" + name, hold: 1500 * time.Millisecond,
		released: make(chan struct{})}
	cfg := rest.CopyConfig(daemontest.Kube.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		transport.next = rt
		return transport
	})
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := daemontest.Start(t, daemontest.Options{Configure: func(c *daemon.Config) {
		c.Kube = client
		c.LeaderElection = &timing
	}})
	waitFor(t, wait, "leadership", h.Daemon.Leading)
	if err := h.Daemon.CheckLease(); err != nil {
		t.Fatalf("CheckLease while leading: %v, want nil", err)
	}

	// One renewal is stored at once but its response arrives 1.5 s later, and none succeeds
	// after it.
	transport.arm()
	select {
	case <-transport.released:
	case <-time.After(wait):
		t.Fatal("no renewal of the Lease was sent")
	}
	past := transport.sentAt().Add(timing.RenewDeadline + 200*time.Millisecond)
	time.Sleep(time.Until(past))
	err = h.Daemon.CheckLease()
	since := time.Since(transport.sentAt()).Round(time.Millisecond)
	if err == nil {
		t.Errorf("CheckLease passed %s after the last renewal was sent, past the renew deadline %s; "+
			"another replica may take the Lease %s after it was stored", since, timing.RenewDeadline,
			timing.LeaseDuration)
	}
	t.Logf("CheckLease %s after the last renewal was sent: %v", since, err)

	if err := h.Err(); !errors.Is(err, daemon.ErrLeaseLost) {
		t.Errorf("Run returned %v, want ErrLeaseLost", err)
	}
}
