package ari

import (
	"context"
	"net/http"
	"net/url"
)

// Module is a loaded Asterisk module as GET /asterisk/modules reports it.
type Module struct {
	// Name is the module's file name, e.g. "res_stasis.so" ("acl" for
	// the core's built-in parts).
	Name        string `json:"name"`
	Description string `json:"description"`
	UseCount    int    `json:"use_count"`
	// Status is "Running" or "Not Running" (loaded but declined to start).
	Status       string `json:"status"`
	SupportLevel string `json:"support_level"`
}

// ConfigTuple is one attribute of a configuration object, as ARI's dynamic
// configuration reports it. Values are Asterisk's renderings: booleans may
// read "true"/"false" or "yes"/"no" depending on the option.
type ConfigTuple struct {
	Attribute string `json:"attribute"`
	Value     string `json:"value"`
}

// Modules lists the modules Asterisk has loaded.
func (c *Client) Modules(ctx context.Context) ([]Module, error) {
	var ms []Module
	err := c.do(ctx, http.MethodGet, "/asterisk/modules", nil, nil, &ms)
	return ms, err
}

// Module returns one loaded module by file name ("res_stasis.so");
// ErrNotFound when it is not loaded.
func (c *Client) Module(ctx context.Context, name string) (Module, error) {
	var m Module
	err := c.do(ctx, http.MethodGet, "/asterisk/modules/"+url.PathEscape(name), nil, nil, &m)
	return m, err
}

// Applications lists the Stasis applications registered with Asterisk.
func (c *Client) Applications(ctx context.Context) ([]Application, error) {
	var apps []Application
	err := c.do(ctx, http.MethodGet, "/applications", nil, nil, &apps)
	return apps, err
}

// DynamicConfig reads one sorcery object's attributes, e.g. class
// "res_pjsip", type "endpoint", id "carrier": what pjsip.conf (or the
// realtime backend) configured, with every default filled in. An unknown
// object yields ErrNotFound.
func (c *Client) DynamicConfig(ctx context.Context, class, objectType, id string) ([]ConfigTuple, error) {
	var attrs []ConfigTuple
	path := "/asterisk/config/dynamic/" + url.PathEscape(class) + "/" + url.PathEscape(objectType) + "/" + url.PathEscape(id)
	err := c.do(ctx, http.MethodGet, path, nil, nil, &attrs)
	return attrs, err
}

// Endpoints lists the endpoints of one technology ("PJSIP") with their
// states (online, offline, unknown).
func (c *Client) Endpoints(ctx context.Context, tech string) ([]Endpoint, error) {
	var eps []Endpoint
	err := c.do(ctx, http.MethodGet, "/endpoints/"+url.PathEscape(tech), nil, nil, &eps)
	return eps, err
}
