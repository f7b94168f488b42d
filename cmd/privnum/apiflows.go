package main

import (
	"fmt"
	"log/slog"

	"github.com/privnum/privnum/api"
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/device"
	"github.com/privnum/privnum/dialq"
	"github.com/privnum/privnum/verify"
)

// deviceSecretEnv names the secret that keys the device service's hashes.
const deviceSecretEnv = "PRIVNUM_DEVICE_SECRET"

// deviceSecret returns the device secret from the environment: nil when it
// is unset, an error when it is too short.
func (a *app) deviceSecret() ([]byte, error) {
	s := a.env(deviceSecretEnv)
	if s == "" {
		return nil, nil
	}
	if len(s) < device.MinSecretLen {
		return nil, fmt.Errorf("%s: %d bytes, want at least %d (e.g. openssl rand -hex 32)", deviceSecretEnv, len(s), device.MinSecretLen)
	}
	return []byte(s), nil
}

// apiFlows builds the API's callback, verification and device services.
// Calls are queued for privnum serve. Without a device secret devices is
// nil: the device routes are not served.
func (a *app) apiFlows(log *slog.Logger) (callbacks *callback.Service, verifications *verify.Service, devices api.DeviceService, err error) {
	cbs, vs, _, err := a.dialServices(log, nil, 0, dialq.Config{})
	if err != nil {
		return nil, nil, nil, err
	}
	secret, err := a.deviceSecret()
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	if secret != nil {
		ds, err := device.New(a.rdb, a.parser, secret, vs, device.Config{Logger: log})
		if err != nil {
			return nil, nil, nil, usageError{err}
		}
		devices = api.NewDeviceService(ds)
	}
	return cbs, vs, devices, nil
}
