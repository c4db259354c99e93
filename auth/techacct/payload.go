package techacct

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// MaxPayloadBytes bounds a pasted JWT payload. The console's payloads are a
// few hundred bytes, with one claim per API.
const MaxPayloadBytes = 64 << 10

// Payload is what the developer console's "JWT payload" of a JWT
// credential says about the technical account: everything the exchange JWT
// needs but the private key, the client secret and the expiry, which
// Gatehouse sets anew on every exchange.
type Payload struct {
	OrgID     string // from iss, "…@AdobeOrg"
	AccountID string // from sub, "…@techacct.adobe.com"
	// IMSURL and ClientID are aud's two halves: "<IMS URL>/c/<client id>".
	IMSURL, ClientID string
	// Metascopes are the names of the "<IMS URL>/s/<name>": true claims,
	// sorted.
	Metascopes []string
}

// PayloadError is a payload that cannot be used; Claim names the claim at
// fault ("" when the payload as a whole is).
type PayloadError struct {
	Claim  string
	Reason string
}

func (e *PayloadError) Error() string {
	if e.Claim == "" {
		return e.Reason
	}
	return fmt.Sprintf("claim %q: %s", e.Claim, e.Reason)
}

// ParsePayload reads the console's JWT payload: a JSON object with iss, sub,
// aud and one "<IMS host>/s/<metascope>" claim per API. exp, iat and jti
// are ignored (a pasted exp is long past; Gatehouse sets its own), as is
// any claim Gatehouse does not use, whatever its type. The claims it uses
// must be strings of the right shape, given once, and every metascope
// claim must name aud's IMS host: the exchange is refused otherwise, so
// it is better refused at start-up, naming the claim.
func ParsePayload(raw []byte) (*Payload, error) {
	if len(raw) > MaxPayloadBytes {
		return nil, &PayloadError{Reason: fmt.Sprintf("%d bytes: at most %d are accepted", len(raw), MaxPayloadBytes)}
	}
	claims, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	str := func(name string) (string, error) {
		v, ok := claims[name]
		if !ok {
			return "", &PayloadError{Claim: name, Reason: "missing"}
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil || strings.TrimSpace(s) == "" {
			return "", &PayloadError{Claim: name, Reason: fmt.Sprintf("%s: want a non-empty string", truncate(v))}
		}
		return s, nil
	}
	var p Payload
	if p.OrgID, err = str("iss"); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(p.OrgID, "@AdobeOrg") {
		return nil, &PayloadError{Claim: "iss", Reason: fmt.Sprintf("%q: want the organization id, …@AdobeOrg", p.OrgID)}
	}
	if p.AccountID, err = str("sub"); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(p.AccountID, "@techacct.adobe.com") {
		return nil, &PayloadError{Claim: "sub", Reason: fmt.Sprintf("%q: want the technical account id, …@techacct.adobe.com", p.AccountID)}
	}
	aud, err := str("aud")
	if err != nil {
		return nil, err
	}
	host, client, ok := strings.Cut(aud, "/c/")
	if !ok || client == "" || strings.Contains(client, "/") || checkIMSURL(host) != "" || strings.Contains(host, "/c/") {
		return nil, &PayloadError{Claim: "aud", Reason: fmt.Sprintf("%q: want <IMS URL>/c/<client id>, e.g. %s/c/0123abcd", aud, DefaultIMSURL)}
	}
	p.IMSURL, p.ClientID = host, client
	for name, v := range claims {
		h, scope, ok := strings.Cut(name, "/s/")
		if !ok || !strings.Contains(h, "://") {
			continue
		}
		var on bool
		if err := json.Unmarshal(v, &on); err != nil {
			return nil, &PayloadError{Claim: name, Reason: fmt.Sprintf("%s: want true", truncate(v))}
		}
		switch {
		case !on:
			continue // the console writes true; false asks for nothing
		case !SameIMS(h, host):
			return nil, &PayloadError{Claim: name, Reason: fmt.Sprintf("names IMS %s, but aud names %s", h, host)}
		case scope == "" || strings.ContainsAny(scope, "/,") || strings.TrimSpace(scope) != scope:
			return nil, &PayloadError{Claim: name, Reason: "want <IMS URL>/s/<metascope>"}
		}
		p.Metascopes = append(p.Metascopes, scope)
	}
	if len(p.Metascopes) == 0 {
		return nil, &PayloadError{Reason: fmt.Sprintf(`no metascope claim: want at least one "%s/s/<metascope>": true, one per API of the integration`, host)}
	}
	slices.Sort(p.Metascopes)
	return &p, nil
}

// decodeObject reads a JSON object's members, refusing a member given
// twice: the first and the last would be read differently by different
// readers.
func decodeObject(raw []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	bad := &PayloadError{Reason: "not a JSON object: paste the JWT payload from the developer console as it is"}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, bad
	}
	claims := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, bad
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, bad
		}
		if _, dup := claims[name]; dup {
			return nil, &PayloadError{Claim: name, Reason: "given twice"}
		}
		claims[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad
	}
	if _, err := dec.Token(); err == nil {
		return nil, &PayloadError{Reason: "text after the JSON object"}
	}
	return claims, nil
}

// SameIMS reports whether two IMS base URLs name the same service, as the
// exchange compares them: scheme and host without letter case, the path
// without a trailing slash.
func SameIMS(a, b string) bool {
	ua, err1 := url.Parse(strings.TrimRight(a, "/"))
	ub, err2 := url.Parse(strings.TrimRight(b, "/"))
	return err1 == nil && err2 == nil && strings.EqualFold(ua.Scheme, ub.Scheme) &&
		strings.EqualFold(ua.Host, ub.Host) && ua.Path == ub.Path
}

func truncate(v json.RawMessage) string {
	const max = 40
	if len(v) > max {
		return string(v[:max]) + "…"
	}
	return string(v)
}
