package device_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/device"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/internal/syncbuf"
	"github.com/privnum/privnum/reject"
	"github.com/privnum/privnum/verify"
)

var cn = e164.Parser{Region: "CN"}

// flasher is a fake verify.Flasher that remembers the last caller ID per number.
type flasher struct {
	mu   sync.Mutex
	last map[string]string
}

func (f *flasher) Flash(_ context.Context, _, number, callerID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last[number] = callerID
	return nil
}

type env struct {
	rdb    redis.UniversalClient
	verify *verify.Service
	flash  *flasher
	svc    *device.Service
	logs   *syncbuf.Buffer
}

var secret = []byte("0123456789abcdef0123456789abcdef")

func newEnv(t *testing.T, cfg device.Config) env {
	t.Helper()
	rdb := redistest.Client(t)
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	f := &flasher{last: map[string]string{}}
	v := verify.New(rdb, cn, f, verify.Config{Logger: log})
	if _, err := v.AddCallerIDs(t.Context(), "+8617055500001", "+8617055500002", "+8617055500003", "+8617055500004"); err != nil {
		t.Fatal(err)
	}
	cfg.Logger = log
	svc, err := device.New(rdb, cn, secret, v, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return env{rdb: rdb, verify: v, flash: f, svc: svc, logs: logs}
}

// verified runs a flash-call verification of number to success.
func (e env) verified(t *testing.T, number string) string {
	t.Helper()
	v, err := e.verify.Start(t.Context(), verify.StartRequest{Number: number, Requester: "ak_test"})
	if err != nil {
		t.Fatal(err)
	}
	e.flash.mu.Lock()
	cid := e.flash.last[cn.MustParse(number)]
	e.flash.mu.Unlock()
	if _, err := e.verify.Check(t.Context(), v.ID, cid); err != nil {
		t.Fatal(err)
	}
	return v.ID
}

const (
	number     = "+8613800000001"
	deviceID   = "android-7f3c9e21d4b8a6f0"
	chipSerial = "89049032004008882600016263187423"
	iccid      = "8986001234567890120"
	imsi       = "460001234567890"
	newICCID   = "89860098765432109876"
	newIMSI    = "460009876543210"
	newChip    = "89049032004008882600099999999999"
)

func registration(vid string) device.Registration {
	return device.Registration{DeviceID: deviceID, ChipSerial: chipSerial, ICCID: iccid, IMSI: imsi, Number: number, VerificationID: vid}
}

func presented(token string) device.Presented {
	return device.Presented{Number: number, DeviceToken: token, ChipSerial: chipSerial, ICCID: iccid, IMSI: imsi}
}

// register registers the standard device with a fresh verification.
func (e env) register(t *testing.T) (device.Device, string) {
	t.Helper()
	d, token, err := e.svc.Register(t.Context(), registration(e.verified(t, number)))
	if err != nil {
		t.Fatal(err)
	}
	return d, token
}

func TestRegisterAndVerify(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, device.Config{})
	d, token := e.register(t)
	if !regexp.MustCompile(`^pnd_[A-Za-z0-9_-]{43}$`).MatchString(token) {
		t.Fatalf("token %q: want pnd_ and 256 bits in base64url", token)
	}
	if d.Number != "+86138****0001" || d.DeviceIDHint != "a6f0" || d.RegisteredAt.IsZero() {
		t.Fatalf("device = %+v", d)
	}
	data, _ := json.Marshal(d)
	var fields map[string]any
	json.Unmarshal(data, &fields)
	if len(fields) != 3 || fields["number"] != "+86138****0001" || fields["device_id_hint"] != "a6f0" || fields["registered_at"] == nil {
		t.Fatalf("JSON = %s", data)
	}
	if err := e.svc.Verify(ctx, presented(token)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	national := presented(token)
	national.Number = "138 0000 0001"
	if err := e.svc.Verify(ctx, national); err != nil {
		t.Fatalf("Verify with a national number: %v", err)
	}
	if err := e.svc.CheckToken(ctx, "13800000001", token); err != nil {
		t.Fatalf("CheckToken: %v", err)
	}
	// A short device id gets no hint.
	r := registration(e.verified(t, "+8613900000002"))
	r.Number, r.DeviceID = "+8613900000002", "dev1"
	if d, _, err := e.svc.Register(ctx, r); err != nil || d.DeviceIDHint != "" {
		t.Fatalf("Register short id = %+v, %v", d, err)
	}
}

func TestVerificationIsRequiredAndSpentOnce(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, device.Config{})
	vid := e.verified(t, number)
	_, token, err := e.svc.Register(ctx, registration(vid))
	if err != nil {
		t.Fatal(err)
	}
	pending, err := e.verify.Start(ctx, verify.StartRequest{Number: number, Requester: "ak_test"})
	if err != nil {
		t.Fatal(err)
	}
	other := e.verified(t, "+8613900000002")
	tests := []struct{ name, vid string }{
		{"reused", vid},
		{"not checked", pending.ID},
		{"for another number", other},
		{"unknown", strings.Repeat("0", 32)},
	}
	for _, tt := range tests {
		if _, _, err := e.svc.Register(ctx, registration(tt.vid)); !errors.Is(err, device.ErrNotVerified) {
			t.Errorf("%s verification: %v, want ErrNotVerified", tt.name, err)
		}
	}
	// The refused attempts left the registration alone.
	if err := e.svc.Verify(ctx, presented(token)); err != nil {
		t.Fatalf("Verify after refused registrations: %v", err)
	}
}

func TestSIMSwap(t *testing.T) {
	tests := []struct {
		name   string
		change func(*device.Presented)
		want   error
	}{
		{"new iccid", func(p *device.Presented) { p.ICCID = newICCID }, device.ErrSIMChanged},
		{"new imsi", func(p *device.Presented) { p.IMSI = newIMSI }, device.ErrSIMChanged},
		{"new sim and chip", func(p *device.Presented) { p.ICCID, p.ChipSerial = newICCID, newChip }, device.ErrSIMChanged},
		{"new chip", func(p *device.Presented) { p.ChipSerial = newChip }, device.ErrChipChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			e := newEnv(t, device.Config{})
			_, token := e.register(t)
			p := presented(token)
			tt.change(&p)
			if err := e.svc.Verify(ctx, p); !errors.Is(err, tt.want) {
				t.Fatalf("Verify with the change: %v, want %v", err, tt.want)
			}
			// Even the old SIM and chip are refused now.
			for range 2 {
				if err := e.svc.Verify(ctx, presented(token)); !errors.Is(err, device.ErrReverify) {
					t.Fatalf("Verify with the old SIM: %v, want ErrReverify", err)
				}
			}
			if err := e.svc.Verify(ctx, p); !errors.Is(err, device.ErrReverify) {
				t.Fatalf("Verify with the new SIM: %v, want ErrReverify", err)
			}
			if err := e.svc.CheckToken(ctx, number, token); !errors.Is(err, device.ErrReverify) {
				t.Fatalf("CheckToken: %v, want ErrReverify", err)
			}
			// Re-registering the new SIM after a new verification works.
			r := registration(e.verified(t, number))
			r.ChipSerial, r.ICCID, r.IMSI = p.ChipSerial, p.ICCID, p.IMSI
			_, token2, err := e.svc.Register(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			p.DeviceToken = token2
			if err := e.svc.Verify(ctx, p); err != nil {
				t.Fatalf("Verify after re-registration: %v", err)
			}
			if err := e.svc.CheckToken(ctx, number, token); !errors.Is(err, device.ErrTokenInvalid) {
				t.Fatalf("old token after re-registration: %v, want ErrTokenInvalid", err)
			}
		})
	}
}

func TestWrongTokenChangesNothing(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, device.Config{})
	_, token := e.register(t)
	for _, bad := range []string{"", "pnd_x", token + "x", strings.ToUpper(token), strings.Repeat("a", 1000)} {
		p := presented(bad)
		p.ICCID = newICCID // someone else's SIM must not lock the owner out
		if err := e.svc.Verify(ctx, p); !errors.Is(err, device.ErrTokenInvalid) {
			t.Errorf("Verify with token %.12q: %v, want ErrTokenInvalid", bad, err)
		}
		if err := e.svc.CheckToken(ctx, number, bad); !errors.Is(err, device.ErrTokenInvalid) {
			t.Errorf("CheckToken(%.12q): %v, want ErrTokenInvalid", bad, err)
		}
	}
	if err := e.svc.Verify(ctx, presented(token)); err != nil {
		t.Fatalf("owner's Verify: %v", err)
	}
}

func TestUnregistered(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, device.Config{})
	if err := e.svc.Verify(ctx, presented("pnd_whatever")); !errors.Is(err, device.ErrNotRegistered) {
		t.Fatalf("Verify: %v", err)
	}
	if err := e.svc.CheckToken(ctx, number, "pnd_whatever"); !errors.Is(err, device.ErrNotRegistered) {
		t.Fatalf("CheckToken: %v", err)
	}
	_, token := e.register(t)
	if err := e.svc.Unregister(ctx, "13800000001"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CheckToken(ctx, number, token); !errors.Is(err, device.ErrNotRegistered) {
		t.Fatalf("CheckToken after Unregister: %v", err)
	}
	if err := e.svc.Unregister(ctx, number); !errors.Is(err, device.ErrNotRegistered) {
		t.Fatalf("Unregister twice: %v", err)
	}
}

func TestInvalidInputStoresNothing(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, device.Config{CheckICCIDLuhn: true})
	vid := e.verified(t, number)
	tests := []struct {
		name, field, raw string
		change           func(*device.Registration)
	}{
		{"no number", "number", "", func(r *device.Registration) { r.Number = "" }},
		{"bad number", "number", "", func(r *device.Registration) { r.Number = "12" }},
		{"no device id", "device_id", "", func(r *device.Registration) { r.DeviceID = "" }},
		{"blank device id", "device_id", "", func(r *device.Registration) { r.DeviceID = "   " }},
		{"long device id", "device_id", strings.Repeat("d", 129), func(r *device.Registration) { r.DeviceID = strings.Repeat("d", 129) }},
		{"control in device id", "device_id", "dev\x00ice-secret", func(r *device.Registration) { r.DeviceID = "dev\x00ice-secret" }},
		{"no chip serial", "chip_serial", "", func(r *device.Registration) { r.ChipSerial = "" }},
		{"newline in chip serial", "chip_serial", "8904903200\n4008882", func(r *device.Registration) { r.ChipSerial = "8904903200\n4008882" }},
		{"short iccid", "iccid", "898600123456789012", func(r *device.Registration) { r.ICCID = "898600123456789012" }},
		{"long iccid", "iccid", "898600123456789012345", func(r *device.Registration) { r.ICCID = "898600123456789012345" }},
		{"letters in iccid", "iccid", "8986001234567890123F", func(r *device.Registration) { r.ICCID = "8986001234567890123F" }},
		{"iccid check digit", "iccid", "8986001234567890124", func(r *device.Registration) { r.ICCID = "8986001234567890124" }},
		{"short imsi", "imsi", "4600012345678", func(r *device.Registration) { r.IMSI = "4600012345678" }},
		{"long imsi", "imsi", "4600012345678901", func(r *device.Registration) { r.IMSI = "4600012345678901" }},
		{"spaced imsi", "imsi", "460 001234567890", func(r *device.Registration) { r.IMSI = "460 001234567890" }},
		{"no verification", "verification_id", "", func(r *device.Registration) { r.VerificationID = "" }},
	}
	before := redistest.Dump(t, e.rdb)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registration(vid)
			tt.change(&r)
			_, token, err := e.svc.Register(ctx, r)
			if !errors.Is(err, device.ErrInvalid) || token != "" {
				t.Fatalf("Register = %q, %v; want ErrInvalid", token, err)
			}
			if fe := (*reject.FieldError)(nil); !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("error %q does not name the field %q", err, tt.field)
			}
			if tt.raw != "" && strings.Contains(err.Error(), tt.raw) {
				t.Errorf("error %q echoes the value", err)
			}
		})
	}
	if after := redistest.Dump(t, e.rdb); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("invalid input changed the store:\n%v\n%v", before, after)
	}
	// Nothing was spent: the verification still registers the device.
	_, token, err := e.svc.Register(ctx, registration(vid))
	if err != nil {
		t.Fatal(err)
	}
	// Malformed presented identifiers are refused without flagging anything.
	p := presented(token)
	p.ICCID = "123"
	if err := e.svc.Verify(ctx, p); !errors.Is(err, device.ErrInvalid) || strings.Contains(err.Error(), "123") {
		t.Fatalf("Verify with a malformed ICCID: %v", err)
	}
	if err := e.svc.Verify(ctx, presented(token)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestNewRefusesShortSecret(t *testing.T) {
	rdb := redistest.Client(t)
	v := verify.New(rdb, cn, &flasher{}, verify.Config{})
	if _, err := device.New(rdb, cn, secret[:31], v, device.Config{}); err == nil {
		t.Fatal("New accepted a 31-byte secret")
	}
}

func TestNoRawIdentifierAnywhere(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, device.Config{})
	d, token := e.register(t)
	secrets := map[string]string{"iccid": iccid, "imsi": imsi, "chip_serial": chipSerial, "device token": token, "device_id": deviceID}

	// Collect everything an outsider could see: the store, errors, JSON, logs.
	seen := map[string]string{}
	for k, v := range redistest.Dump(t, e.rdb) {
		seen["key "+k] = k
		seen["value of "+k] = v
	}
	data, _ := json.Marshal(d)
	seen["Device JSON"] = string(data) + fmt.Sprintf("%+v", d)
	p := presented(token)
	p.ICCID, p.ChipSerial = newICCID, newChip
	for i, err := range []error{
		e.svc.Verify(ctx, p),
		e.svc.Verify(ctx, presented(token)),
		e.svc.CheckToken(ctx, number, token+"x"),
		e.svc.Verify(ctx, presented(token+"x")),
	} {
		if err == nil {
			t.Fatalf("check %d passed", i)
		}
		seen[fmt.Sprintf("error %d", i)] = err.Error()
	}
	r := registration(strings.Repeat("0", 32))
	_, _, err := e.svc.Register(ctx, r)
	seen["Register error"] = err.Error()
	seen["logs"] = e.logs.String()

	// The hashes that were stored are keyed hashes.
	h, err := e.rdb.HGetAll(ctx, "pn:device:{+8613800000001}").Result()
	if err != nil || len(h) == 0 {
		t.Fatalf("registration hash = %v, %v", h, err)
	}
	for _, f := range []string{"dev", "chip", "iccid", "imsi", "tok"} {
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(h[f]) {
			t.Errorf("%s stored as %q, want an HMAC-SHA256 in hex", f, h[f])
		}
	}
	for where, text := range seen {
		for name, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("raw %s found in %s: %s", name, where, text)
			}
		}
	}
	// Re-registering keeps it that way.
	_, token2, err := e.svc.Register(ctx, registration(e.verified(t, number)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range redistest.Dump(t, e.rdb) {
		for name, s := range map[string]string{"iccid": iccid, "imsi": imsi, "chip_serial": chipSerial, "old token": token, "new token": token2} {
			if strings.Contains(k, s) || strings.Contains(v, s) {
				t.Errorf("raw %s found in %s", name, k)
			}
		}
	}
}
