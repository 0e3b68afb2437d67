package helpdeskflow_test

import (
	"strings"
	"testing"

	"github.com/helpdeskflow/helpdeskflow"
)

func TestAPIKeyFormat(t *testing.T) {
	key, err := helpdeskflow.NewAPIKeySecret()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "hdf_") || len(key) != helpdeskflow.APIKeyLen {
		t.Fatalf("key %q lacks the prefix or length", key)
	}
	if !helpdeskflow.ValidAPIKeyFormat(key) {
		t.Fatalf("fresh key %q is refused", key)
	}
	other, _ := helpdeskflow.NewAPIKeySecret()
	if other == key {
		t.Fatal("two keys are equal")
	}
	flipped := []byte(key)
	if flipped[10] == 'a' {
		flipped[10] = 'b'
	} else {
		flipped[10] = 'a'
	}
	for _, bad := range []string{"", "hdf_", key[:len(key)-1], "xyz_" + key[4:], string(flipped), key[:20] + "-" + key[21:]} {
		if helpdeskflow.ValidAPIKeyFormat(bad) {
			t.Errorf("malformed key %q accepted", bad)
		}
	}
	if got := helpdeskflow.APIKeyDisplayPrefix(key); got != key[:12] {
		t.Errorf("display prefix = %q", got)
	}
}
