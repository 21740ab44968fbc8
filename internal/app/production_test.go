package app

import (
	"testing"
	"time"
)

func TestParseRole(t *testing.T) {
	tests := []struct {
		in      string
		want    Role
		wantErr bool
	}{
		{"", RoleAll, false},
		{"all", RoleAll, false},
		{"Server", RoleServer, false},
		{" worker ", RoleWorker, false},
		{"both", "", true},
	}
	for _, tc := range tests {
		got, err := ParseRole(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseRole(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestDrainDelay(t *testing.T) {
	tests := []struct {
		set   bool
		cfg   time.Duration
		role  Role
		wants time.Duration
	}{
		{false, 0, RoleServer, DefaultDrainDelay}, // behind a load balancer
		{false, 0, RoleAll, 0},                    // a single process stops at once
		{false, 0, RoleWorker, 0},
		{true, 0, RoleServer, 0}, // explicitly off (tests)
		{true, 2 * time.Second, RoleAll, 2 * time.Second},
	}
	for _, tc := range tests {
		if got := DrainDelay(tc.set, tc.cfg, tc.role); got != tc.wants {
			t.Errorf("DrainDelay(%v, %v, %s) = %v, want %v", tc.set, tc.cfg, tc.role, got, tc.wants)
		}
	}
}
