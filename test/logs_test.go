package test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
	"github.com/gatehouse-proxy/gatehouse/session"
	"github.com/gatehouse-proxy/gatehouse/session/sqlite"
)

// TestLogsCarryNoSecrets runs a flow with several tokens and cookies, good
// and bad, then reads everything the process wrote: no bearer token, cookie
// value or cookie key may be in it, while the sign-ins and every request
// are.
func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		configured bool // GATEHOUSE_COOKIE_KEYS set; else generated and kept in the store
	}{
		{"generated cookie keys", false},
		{"configured cookie keys", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			env := map[string]string{}
			var keys []session.KeyPair
			if tc.configured {
				kp, err := session.GenerateKeyPair()
				if err != nil {
					t.Fatal(err)
				}
				keys = []session.KeyPair{kp}
				env["COOKIE_KEYS"] = kp.Encode()
			}
			p := w.start(t, env)

			tokA, tokB := w.mint(t, alice, clientID), w.mint(t, bob, clientID2)
			inQuery := w.mint(t, alice, clientID)
			expired := w.mintReq(t, imstest.TokenRequest{UserID: alice.id, ClientID: clientID,
				CreatedAt: time.Now().Add(-2 * time.Hour), Lifetime: time.Hour})
			otherClient := w.mintReq(t, imstest.TokenRequest{UserID: alice.id, ClientID: "some-other-client"})

			type sent struct {
				id, path string
				status   int
			}
			var requests []sent
			do := func(r request, status int) *response {
				t.Helper()
				resp := p.do(t, r)
				wantStatus(t, resp, status)
				path, _, _ := strings.Cut(r.path, "?")
				requests = append(requests, sent{resp.header.Get("X-Request-Id"), path, status})
				return resp
			}
			cookieA := do(request{path: whoami, bearer: tokA}, 200).newCookie(t).value
			do(request{path: whoami, bearer: tokA}, 200)
			do(request{path: "/content/dam/we-retail.json", cookie: cookieA}, 200)
			do(request{path: "/content/dam.json?access_token=" + inQuery, cookie: cookieA}, 200)
			cookieB := do(request{path: whoami, bearer: tokB, cookie: cookieA}, 200).newCookie(t).value
			do(request{path: whoami, bearer: expired}, 401)
			do(request{path: whoami, bearer: otherClient}, 401)
			do(request{path: whoami, cookie: cookieB[:len(cookieB)-8]}, 401)
			do(request{method: "POST", path: "/gatehouse/logout", cookie: cookieA}, 200)
			do(request{path: whoami, cookie: cookieA}, 401)
			p.stop(t) // every log line is written once the process has exited

			if !tc.configured {
				keys = storedCookieKeys(t, w.db)
			}
			logs := p.logs.String()
			secrets := map[string]string{}
			for name, tok := range map[string]string{"alice's token": tokA, "bob's token": tokB,
				"the token in a query": inQuery, "the expired token": expired, "the other client's token": otherClient} {
				secrets[name] = tok
				parts := strings.Split(tok, ".")
				secrets[name+" (payload)"] = parts[1]
				secrets[name+" (signature)"] = parts[2]
			}
			for name, c := range map[string]string{"alice's cookie": cookieA, "bob's cookie": cookieB} {
				secrets[name] = c
				secrets[name+" (a slice of it)"] = c[len(c)/3 : len(c)/3+24]
			}
			for i, k := range keys {
				for form, s := range keyForms(k.Hash) {
					secrets["cookie hash key "+string(rune('1'+i))+" as "+form] = s
				}
				for form, s := range keyForms(k.Block) {
					secrets["cookie block key "+string(rune('1'+i))+" as "+form] = s
				}
			}
			for name, s := range secrets {
				if strings.Contains(logs, s) {
					t.Errorf("the log contains %s", name)
				}
			}

			lines := p.logs.lines(t)
			signedIn := map[string]int{}
			access := map[string][]logLine{}
			others := 0
			for _, l := range lines {
				switch l.str("msg") {
				case "signed in":
					signedIn[l.str("user")]++
				case "request":
					if l.str("path") == "/gatehouse/readyz" {
						continue // start-up polling
					}
					access[l.str("request_id")] = append(access[l.str("request_id")], l)
					others++
				}
			}
			if len(signedIn) != 2 || signedIn[alice.id] != 1 || signedIn[bob.id] != 1 {
				t.Errorf("\"signed in\" events by user: %v; want one each for %s and %s", signedIn, alice.id, bob.id)
			}
			if others != len(requests) {
				t.Errorf("%d access-log lines, want one for each of the %d requests", others, len(requests))
			}
			for _, s := range requests {
				ls := access[s.id]
				if len(ls) != 1 {
					t.Errorf("request %s %s: %d access-log lines, want 1", s.id, s.path, len(ls))
					continue
				}
				l := ls[0]
				if l.str("path") != s.path || l["status"] != float64(s.status) || l.str("method") == "" {
					t.Errorf("access-log line %v, want path %s status %d", l, s.path, s.status)
				}
			}
		})
	}
}

// storedCookieKeys reads the cookie keys Gatehouse generated and kept in its
// store.
func storedCookieKeys(t *testing.T, db string) []session.KeyPair {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := st.GetOrCreateSetting(ctx, session.CookieKeysSetting, []byte("none"))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := session.ParseStoredCookieKeys(v)
	if err != nil {
		t.Fatalf("stored cookie keys: %v", err)
	}
	keys := make([]session.KeyPair, len(stored))
	for i, k := range stored {
		keys[i] = k.KeyPair
	}
	return keys
}

// keyForms is key material in every encoding a careless log might use.
func keyForms(b []byte) map[string]string {
	return map[string]string{
		"base64url": base64.RawURLEncoding.EncodeToString(b),
		"base64":    base64.RawStdEncoding.EncodeToString(b),
		"hex":       hex.EncodeToString(b),
		"HEX":       strings.ToUpper(hex.EncodeToString(b)),
	}
}

// TestProbesLoggedAtDebug: a kubelet probing every few seconds must not
// drown the access log at the default level; at debug its lines are there.
func TestProbesLoggedAtDebug(t *testing.T) {
	t.Parallel()
	for _, level := range []string{"info", "debug"} {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			p := w.start(t, map[string]string{"LOG_LEVEL": level})
			wantStatus(t, p.do(t, request{path: "/gatehouse/healthz"}), 200)
			wantStatus(t, p.do(t, request{path: "/gatehouse/readyz"}), 200)
			wantStatus(t, p.do(t, request{path: whoami}), 401)
			p.stop(t)
			var probes, others int
			for _, line := range strings.Split(p.logs.String(), "\n") {
				var e struct {
					Level, Msg, Path string
				}
				if json.Unmarshal([]byte(line), &e) != nil || e.Msg != "request" {
					continue
				}
				switch e.Path {
				case "/gatehouse/healthz", "/gatehouse/readyz":
					probes++
					if e.Level != "debug" {
						t.Errorf("probe logged at %q: %s", e.Level, line)
					}
				default:
					others++
				}
			}
			// The harness itself waits on readyz before the test's requests.
			if (level == "info") != (probes == 0) || (level == "debug" && probes < 2) || others != 1 {
				t.Errorf("at %s: %d probe lines, %d other access lines; want none at info, two or more at debug, and 1 other\n%s",
					level, probes, others, p.logs.String())
			}
		})
	}
}
