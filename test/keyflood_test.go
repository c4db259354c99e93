package test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

// TestKeyFlood: tokens naming key ids and certificate files IMS never
// published are refused 401 invalid_token, never 503, however many arrive,
// for at most one key-set fetch and eight certificate fetches per
// GATEHOUSE_IMS_KEYS_MIN_REFRESH; real users sign in all along.
func TestKeyFlood(t *testing.T) {
	w := newWorld(t)
	p := w.start(t, map[string]string{
		"IMS_CERTS_URL":        w.ims.URL + "/keys/prod/",
		"IMS_KEYS_MIN_REFRESH": "10m", // the whole test is one interval
	})
	_, payload := jwtParts(t, w.mint(t, alice, clientID))
	junk := func(header map[string]any) string {
		return craftJWT(t, header, payload, func([]byte) []byte {
			sig := make([]byte, 256)
			_, _ = rand.Read(sig)
			return sig
		})
	}
	keysBefore, certsBefore := w.ims.Calls(imstest.EndpointKeys), w.ims.Calls(imstest.EndpointCerts)

	const n = 240
	var (
		mu     sync.Mutex
		status = map[int]int{}
		wrong  []string
		wg     sync.WaitGroup
	)
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				var h map[string]any
				switch i % 3 {
				case 0:
					h = map[string]any{"alg": "RS256", "x5u": fmt.Sprintf("junk-%d.cer", i)}
				case 1:
					h = map[string]any{"alg": "RS256", "kid": fmt.Sprintf("junk-%d", i)}
				default:
					h = map[string]any{"alg": "RS256", "kid": fmt.Sprintf("junk-%d", i), "x5u": fmt.Sprintf("junk-%d.cer", i)}
				}
				r := p.do(t, request{path: "/content/dam/we-retail.json", bearer: junk(h)})
				mu.Lock()
				status[r.status]++
				if r.status != http.StatusUnauthorized || r.header.Get("X-Reason") != "INVALID_TOKEN" {
					wrong = append(wrong, r.String())
				}
				mu.Unlock()
			}
		})
		// A real user in the middle of the flood.
		if g == 4 {
			wantStatus(t, p.do(t, request{path: whoami, bearer: w.mint(t, bob, clientID)}), http.StatusOK)
		}
	}
	wg.Wait()
	if len(wrong) > 0 {
		t.Errorf("statuses %v; first wrong answer: %s", status, wrong[0])
	}
	if got := w.ims.Calls(imstest.EndpointKeys) - keysBefore; got > 1 {
		t.Errorf("%d key-set fetches during the flood, want at most 1", got)
	}
	if got := w.ims.Calls(imstest.EndpointCerts) - certsBefore; got > 8 {
		t.Errorf("%d certificate fetches during the flood, want at most 8", got)
	}
	r := p.do(t, request{path: whoami, bearer: w.mint(t, alice, clientID)})
	wantStatus(t, r, http.StatusOK)
	wantUser(t, r, alice)
}
