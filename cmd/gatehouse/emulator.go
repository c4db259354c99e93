package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse-proxy/gatehouse/auth/ims"
	"github.com/gatehouse-proxy/gatehouse/auth/ims/imstest"
)

// The user, organization and client the emulator and the demo start with.
const (
	demoUserID   = "7F8F1234ABCD5678EF901234@AdobeID"
	demoEmail    = "alex.author@example.com"
	demoOrgID    = "1234ABCD5678EF90@AdobeOrg"
	demoClientID = "cc-europa-desktop_10_0"
	// demoBrowserClientID is the demo's web credential for browser sign-in.
	demoBrowserClientID = "gatehouse-demo-web"
)

func demoUser() imstest.User {
	return imstest.User{
		ID: demoUserID, Email: demoEmail, FirstName: "Alex", LastName: "Author",
		DisplayName: "Alex Author", CountryCode: "DE",
		Orgs: []imstest.Org{{
			ID: demoOrgID, Name: "Example Brand",
			Groups: []ims.Group{
				{GroupName: "AEM-Authors", GroupDisplayName: "AEM Authors", Ident: "4711", Role: "TEAM_MEMBER", GroupType: "USER_GROUP"},
				{GroupName: "AEM-Admins", GroupDisplayName: "AEM Administrators", Ident: "4712", Role: "GRP_ADMIN", GroupType: "USER_GROUP"},
			},
		}},
	}
}

func emulatorCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ims-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8180", "address to listen on")
	cluster := fs.String("cluster", "ims-na1", "IMS cluster named in tokens' 'as' claim")
	seed := fs.Bool("seed", true, "start with a demo user ("+demoUserID+") in organization "+demoOrgID)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gatehouse ims-emulator [flags]\n\nRuns a faithful emulator of the IMS endpoints Gatehouse uses, for development and tests.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	emu, err := imstest.New(imstest.Options{Cluster: *cluster})
	if err != nil {
		return fmt.Errorf("ims emulator: %w", err)
	}
	if *seed {
		emu.AddUser(demoUser())
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "IMS emulator listening on %s\n", base)
	fmt.Fprintf(stdout, "  keys:          %s/ims/keys\n", base)
	fmt.Fprintf(stdout, "  certificates:  %s%s\n", base, emu.CertsPath())
	if *seed {
		fmt.Fprintf(stdout, "  mint a token:  curl -s -X POST -d user_id=%s -d client_id=%s %s/ims/dev/token\n", demoUserID, demoClientID, base)
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ims emulator: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
