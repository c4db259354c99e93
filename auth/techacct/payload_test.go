package techacct

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// consolePayload is a JWT payload as the developer console shows it.
const consolePayload = `{
  "exp": 1550001438,
  "iss": "C74F69D7594880280A495D09@AdobeOrg",
  "sub": "6657031C5C095BB40A4C4C8B@techacct.adobe.com",
  "https://ims-na1.adobelogin.com/s/ent_cloudmgr_sdk": true,
  "aud": "https://ims-na1.adobelogin.com/c/f3a3ef6b5d0c4a8ca1b5ea2c5a0e1f4b"
}`

func TestParsePayload(t *testing.T) {
	want := Payload{OrgID: "C74F69D7594880280A495D09@AdobeOrg", AccountID: "6657031C5C095BB40A4C4C8B@techacct.adobe.com",
		IMSURL: "https://ims-na1.adobelogin.com", ClientID: "f3a3ef6b5d0c4a8ca1b5ea2c5a0e1f4b", Metascopes: []string{"ent_cloudmgr_sdk"}}
	for _, tc := range []struct {
		name  string
		in    string
		claim string // "" with err: the payload as a whole
		err   bool
		check func(*Payload) bool
	}{
		{"as the console shows it", consolePayload, "", false, nil},
		{"extra claims of any type, no exp", `{"iss":"C74F69D7594880280A495D09@AdobeOrg","sub":"6657031C5C095BB40A4C4C8B@techacct.adobe.com",
			"aud":"https://ims-na1.adobelogin.com/c/f3a3ef6b5d0c4a8ca1b5ea2c5a0e1f4b","https://ims-na1.adobelogin.com/s/ent_cloudmgr_sdk":true,
			"jti":12,"iat":null,"x":{"y":[1,"2"]},"exp":"soon"}`, "", false, nil},
		{"two metascopes, one false", strings.Replace(consolePayload, `"aud"`,
			`"https://ims-na1.adobelogin.com/s/ent_analytics_bulk_ingest_sdk": true, "https://ims-na1.adobelogin.com/s/ent_user_sdk": false, "aud"`, 1), "", false,
			func(p *Payload) bool {
				return slices.Equal(p.Metascopes, []string{"ent_analytics_bulk_ingest_sdk", "ent_cloudmgr_sdk"})
			}},
		{"staging IMS", strings.ReplaceAll(consolePayload, "ims-na1.adobelogin.com", "ims-na1-stg1.adobelogin.com"), "", false,
			func(p *Payload) bool { return p.IMSURL == "https://ims-na1-stg1.adobelogin.com" }},
		{"not JSON", `iss=x`, "", true, nil},
		{"a JSON array", `[1]`, "", true, nil},
		{"null", `null`, "", true, nil},
		{"text after it", consolePayload + ` {}`, "", true, nil},
		{"truncated", consolePayload[:40], "", true, nil},
		{"no iss", strings.Replace(consolePayload, `"iss"`, `"issuer"`, 1), "iss", true, nil},
		{"iss a number", strings.Replace(consolePayload, `"C74F69D7594880280A495D09@AdobeOrg"`, `74`, 1), "iss", true, nil},
		{"iss not an org", strings.Replace(consolePayload, `@AdobeOrg`, `@AdobeID`, 1), "iss", true, nil},
		{"iss twice", strings.Replace(consolePayload, `"exp"`, `"iss": "A@AdobeOrg", "exp"`, 1), "iss", true, nil},
		{"no sub", strings.Replace(consolePayload, `"sub"`, `"subject"`, 1), "sub", true, nil},
		{"sub not a technical account", strings.Replace(consolePayload, `@techacct.adobe.com`, `@AdobeID`, 1), "sub", true, nil},
		{"no aud", strings.Replace(consolePayload, `"aud"`, `"audience"`, 1), "aud", true, nil},
		{"aud without /c/", strings.Replace(consolePayload, `/c/`, `/x/`, 1), "aud", true, nil},
		{"aud without a client id", strings.Replace(consolePayload, `/c/f3a3ef6b5d0c4a8ca1b5ea2c5a0e1f4b`, `/c/`, 1), "aud", true, nil},
		{"aud not a URL", strings.Replace(consolePayload, `https://ims-na1.adobelogin.com/c/`, `ims/c/`, 1), "aud", true, nil},
		{"no metascope", strings.Replace(consolePayload, `"https://ims-na1.adobelogin.com/s/ent_cloudmgr_sdk": true,`, ``, 1), "", true, nil},
		{"metascope of another IMS", strings.Replace(consolePayload, `https://ims-na1.adobelogin.com/s/`, `https://evil.example/s/`, 1),
			"https://evil.example/s/ent_cloudmgr_sdk", true, nil},
		{"metascope as a string", strings.Replace(consolePayload, `ent_cloudmgr_sdk": true`, `ent_cloudmgr_sdk": "true"`, 1),
			"https://ims-na1.adobelogin.com/s/ent_cloudmgr_sdk", true, nil},
		{"too large", `{"x":"` + strings.Repeat("a", MaxPayloadBytes) + `"}`, "", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePayload([]byte(tc.in))
			if tc.err {
				var pe *PayloadError
				if !errors.As(err, &pe) || pe.Claim != tc.claim || pe.Reason == "" {
					t.Fatalf("ParsePayload = %+v, %v; want a PayloadError of claim %q", p, err, tc.claim)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				if !tc.check(p) {
					t.Errorf("payload %+v", p)
				}
				return
			}
			if !(p.OrgID == want.OrgID && p.AccountID == want.AccountID && p.IMSURL == want.IMSURL && p.ClientID == want.ClientID && slices.Equal(p.Metascopes, want.Metascopes)) {
				t.Errorf("payload %+v; want %+v", p, want)
			}
		})
	}
}

func TestSameIMS(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"https://ims-na1.adobelogin.com", "https://ims-na1.adobelogin.com/", true},
		{"https://IMS-na1.adobelogin.com", "HTTPS://ims-na1.adobelogin.com", true},
		{"http://127.0.0.1:8180", "http://127.0.0.1:8180/", true},
		{"http://127.0.0.1:8180", "http://127.0.0.1:8181", false},
		{"https://ims-na1.adobelogin.com", "http://ims-na1.adobelogin.com", false},
		{"https://ims-na1.adobelogin.com/a", "https://ims-na1.adobelogin.com", false},
	} {
		if got := SameIMS(tc.a, tc.b); got != tc.want {
			t.Errorf("SameIMS(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// FuzzParsePayload: any input gives a payload whose fields hold up, or a
// PayloadError; never a panic.
func FuzzParsePayload(f *testing.F) {
	f.Add([]byte(consolePayload))
	f.Add([]byte(`{"iss":"a@AdobeOrg","sub":"b@techacct.adobe.com","aud":"http://h/c/x","http://h/s/m":true}`))
	f.Add([]byte(`{"aud":"http://h/c/x/c/y","iss":1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ParsePayload(in)
		if err != nil {
			var pe *PayloadError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a PayloadError", err)
			}
			return
		}
		if !strings.HasSuffix(p.OrgID, "@AdobeOrg") || !strings.HasSuffix(p.AccountID, "@techacct.adobe.com") ||
			p.ClientID == "" || strings.Contains(p.ClientID, "/") || len(p.Metascopes) == 0 || checkIMSURL(p.IMSURL) != "" {
			t.Fatalf("accepted %q as %+v", in, p)
		}
	})
}
