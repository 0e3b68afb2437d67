package main

import (
	"strings"
	"testing"
)

func TestConfig_InstanceID(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        string
		args       []string
		want       string
		wantErrMsg string
	}{
		{name: "unset: dynamic membership"},
		{name: "from the environment (a pod name)", env: "helpdeskflow-projector-7f9c6d5b8-x2k4p", want: "helpdeskflow-projector-7f9c6d5b8-x2k4p"},
		{name: "the flag wins", env: "projector-1", args: []string{"--instance-id", "projector-2"}, want: "projector-2"},
		{name: "refused by Kafka's rules", env: "projector/1", wantErrMsg: "HDF_INSTANCE_ID (--instance-id): only letters, digits"},
		{name: "too long", env: strings.Repeat("p", 250), wantErrMsg: "HDF_INSTANCE_ID (--instance-id): at most 249 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HDF_INSTANCE_ID", tc.env)
			cfg, ok := parseServeConfig(t, tc.args, tc.wantErrMsg)
			if !ok {
				return
			}
			if cfg.InstanceID != tc.want {
				t.Errorf("InstanceID = %q, want %q", cfg.InstanceID, tc.want)
			}
		})
	}
}
