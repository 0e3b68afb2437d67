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

// FuzzValidAPIKeyFormat: the parser never panics, accepts only strings of
// the key's shape, and refuses every single-character change to a real key
// (the checksum catches it without a database lookup).
func FuzzValidAPIKeyFormat(f *testing.F) {
	real, err := helpdeskflow.NewAPIKeySecret()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real, 5, byte('x'))
	f.Add("hdf_", 0, byte('A'))
	f.Add("", 0, byte(0))
	f.Add("hdf_000000000000000000000000000000000000", 39, byte('1'))
	f.Fuzz(func(t *testing.T, s string, pos int, b byte) {
		if helpdeskflow.ValidAPIKeyFormat(s) {
			if len(s) != helpdeskflow.APIKeyLen || !strings.HasPrefix(s, helpdeskflow.APIKeyPrefix) {
				t.Fatalf("accepted %q, which has not the key's shape", s)
			}
		}
		if pos < 0 {
			pos = -pos
		}
		i := len(helpdeskflow.APIKeyPrefix) + pos%(len(real)-len(helpdeskflow.APIKeyPrefix))
		if real[i] == b {
			return
		}
		mutated := real[:i] + string([]byte{b}) + real[i+1:]
		if helpdeskflow.ValidAPIKeyFormat(mutated) {
			t.Fatalf("accepted %q, a one-character change of a real key", mutated)
		}
	})
}
