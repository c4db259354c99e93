package postgres

import (
	"context"
	"testing"

	"github.com/gatehouse-proxy/gatehouse/session/postgres/pgtest"
	"github.com/gatehouse-proxy/gatehouse/session/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return open(t, pgtest.URL(t))
	})
}

// open opens a store on url. The caller closes it (storetest.Run does).
func open(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
