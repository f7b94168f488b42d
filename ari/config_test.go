package ari_test

import (
	"context"
	"errors"
	"testing"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/ari/arisim"
)

func simClient(t *testing.T) (*arisim.Sim, *ari.Client) {
	t.Helper()
	sim := arisim.New(arisim.Options{Username: "u", Password: "p"})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	c, err := ari.New(ari.Config{URL: sim.URL(), Username: "u", Password: "p", Application: "privnum"})
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

// TestConfigReads reads what a configuration check needs from the
// simulator, whose answers match a real Asterisk 22.10.1 (arisim's replay
// of the doctor-reads trace).
func TestConfigReads(t *testing.T) {
	ctx := context.Background()
	sim, c := simClient(t)

	info, err := c.Info(ctx)
	if err != nil || info.System.Version != "22.10.1" {
		t.Fatalf("Info = %+v, %v", info.System, err)
	}

	mods, err := c.Modules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range mods {
		if m.Name == "res_stasis.so" {
			found = m.Status == "Running" && m.Description != ""
		}
	}
	if len(mods) < 100 || !found {
		t.Errorf("Modules: %d modules, res_stasis.so running: %v", len(mods), found)
	}
	if m, err := c.Module(ctx, "chan_pjsip.so"); err != nil || m.Status != "Running" {
		t.Errorf("Module(chan_pjsip.so) = %+v, %v", m, err)
	}
	sim.SetModule("chan_pjsip.so", "")
	if _, err := c.Module(ctx, "chan_pjsip.so"); !errors.Is(err, ari.ErrNotFound) {
		t.Errorf("Module of an unloaded module: %v, want ErrNotFound", err)
	}

	attrs, err := c.DynamicConfig(ctx, "res_pjsip", "endpoint", "carrier")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range attrs {
		got[a.Attribute] = a.Value
	}
	if got["send_pai"] != "true" || got["send_connected_line"] != "yes" || got["aors"] != "carrier" {
		t.Errorf("carrier: send_pai=%q send_connected_line=%q aors=%q", got["send_pai"], got["send_connected_line"], got["aors"])
	}
	if _, err := c.DynamicConfig(ctx, "res_pjsip", "endpoint", "nosuch"); !errors.Is(err, ari.ErrNotFound) {
		t.Errorf("unknown endpoint: %v, want ErrNotFound", err)
	}
	if a, err := c.DynamicConfig(ctx, "res_pjsip", "aor", "carrier"); err != nil || len(a) == 0 {
		t.Errorf("aor carrier: %v, %v", a, err)
	}

	apps, err := c.Applications(ctx)
	if err != nil || len(apps) != 0 {
		t.Errorf("Applications = %v, %v; want none registered", apps, err)
	}
	if _, err := c.Application(ctx, "privnum"); !errors.Is(err, ari.ErrNotFound) {
		t.Errorf("Application(privnum) with no WebSocket: %v, want ErrNotFound", err)
	}

	eps, err := c.Endpoints(ctx, "PJSIP")
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, e := range eps {
		states[e.Resource] = e.State
	}
	if states["carrier"] != "online" || states["trunk-in"] != "offline" {
		t.Errorf("Endpoints = %v", states)
	}
}
