package api

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/device"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/verify"
)

// The flow tests run the real callback, verify and device services on the
// test Redis, behind the adapters of adapt.go, with fakes where
// the services reach out: a queue that keeps the callback jobs and a
// flasher that keeps the caller IDs it was asked to ring from.

// deviceSecret keys the test device service.
var deviceSecret = []byte(strings.Repeat("s", device.MinSecretLen))

// jobQueue is a fake callback.Queue that keeps what it is given.
type jobQueue struct {
	mu   sync.Mutex
	jobs []string // kind:id
}

func (q *jobQueue) Enqueue(_ context.Context, kind, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(q.jobs, kind+":"+id)
	return nil
}

func (q *jobQueue) list() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.jobs...)
}

// flasher is a fake verify.Flasher that keeps every flash call, and fails
// them while fail is set.
type flasher struct {
	mu    sync.Mutex
	calls []flashCall
	fail  error
}

type flashCall struct{ id, number, callerID string }

func (f *flasher) Flash(_ context.Context, id, number, callerID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, flashCall{id, number, callerID})
	return f.fail
}

func (f *flasher) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// callerID is the caller ID verification id was flashed from.
func (f *flasher) callerID(t *testing.T, id string) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c.id == id {
			return c.callerID
		}
	}
	t.Fatalf("no flash call for verification %s", id)
	return ""
}

func (f *flasher) all() []flashCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]flashCall(nil), f.calls...)
}

// flows are the real services behind the env's flow routes.
type flows struct {
	flash     *flasher
	queue     *jobQueue
	verify    *verify.Service
	callbacks *callback.Service
	devices   *device.Service
}

// newFlows builds the services on the env's Redis; vcfg tunes verify.
func newFlows(t *testing.T, c *Config, qr *fakeQR, vcfg verify.Config) *flows {
	t.Helper()
	f := &flows{flash: &flasher{}, queue: &jobQueue{}}
	parser := c.Bindings.Parser()
	vcfg.Logger = c.Logger
	f.verify = verify.New(c.Redis, parser, f.flash, vcfg)
	f.callbacks = callback.New(c.Redis, callback.Deps{Bindings: c.Bindings, Orders: c.Orders, Owners: qr, Queue: f.queue},
		callback.Config{Logger: c.Logger})
	var err error
	f.devices, err = device.New(c.Redis, parser, deviceSecret, f.verify, device.Config{Logger: c.Logger})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// wire serves the flows through c.
func (f *flows) wire(c *Config) {
	c.Callbacks = NewCallbackService(f.callbacks)
	c.Verifications = NewVerificationService(f.verify)
	c.Devices = NewDeviceService(f.devices)
}

// verified starts and checks a verification of number through the API and
// returns its id.
func (e *env) verified(number string) string {
	e.t.Helper()
	var v Verification
	e.ok(call{method: "POST", path: "/v1/verifications", key: e.admin(), body: `{"number":"` + number + `"}`}, 202, &v)
	e.ok(call{method: "POST", path: "/v1/verifications/" + v.ID + "/check", key: e.admin(),
		body: `{"reported":"` + e.flows.flash.callerID(e.t, v.ID) + `"}`}, 200, &v)
	if v.Status != "verified" {
		e.t.Fatalf("verification %+v", v)
	}
	return v.ID
}

// callerIDs puts caller IDs in the verification pool.
func (e *env) callerIDs(ids ...string) {
	e.t.Helper()
	if _, err := e.flows.verify.AddCallerIDs(context.Background(), ids...); err != nil {
		e.t.Fatal(err)
	}
}

// sim is a device's identifiers.
type sim struct{ deviceID, chip, iccid, imsi string }

var phone = sim{deviceID: "handset-7f3a9c2e-WXYZ", chip: "EID89049032004008882600012345678", iccid: "89860318740012345678", imsi: "460031234567890"}

func (d sim) registration(number, verificationID string) string {
	return `{"device_id":"` + d.deviceID + `","chip_serial":"` + d.chip + `","iccid":"` + d.iccid + `","imsi":"` + d.imsi +
		`","number":"` + number + `","verification_id":"` + verificationID + `"}`
}

func (d sim) presented(number, token string) string {
	return `{"number":"` + number + `","device_token":"` + token + `","chip_serial":"` + d.chip + `","iccid":"` + d.iccid + `","imsi":"` + d.imsi + `"}`
}

// register verifies number and registers d for it through the API; it
// returns the device token.
func (e *env) register(number string, d sim) string {
	e.t.Helper()
	var reg deviceRegistered
	e.ok(call{method: "POST", path: "/v1/devices", key: e.keys[apikey.Devices], body: d.registration(number, e.verified(number))}, 201, &reg)
	if !strings.HasPrefix(reg.DeviceToken, "pnd_") {
		e.t.Fatalf("registration %+v", reg)
	}
	return reg.DeviceToken
}

// Owner makes fakeQR a callback.Owners.
func (f *fakeQR) Owner(_ context.Context, token string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.codes[token]
	if !ok || c.Revoked {
		return "", qr.ErrNotFound
	}
	return f.owners[token], nil
}
