package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// TestOpenAPIRoutes checks that the server serves exactly the operations
// openapi.json describes, with the documented scope and Idempotency-Key
// support. (Every other test checks each request and response it makes
// against the document: see env.do.)
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadDoc(t)
	e := newEnv(t)

	type opInfo struct {
		scope      string
		idempotent bool
		public     bool
	}
	documented := map[string]opInfo{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			info := opInfo{public: op.Security != nil && len(*op.Security) == 0}
			if s, ok := op.Extensions["x-privnum-scope"].(string); ok {
				info.scope = s
			}
			for _, p := range op.Parameters {
				if p.Value.In == "header" && p.Value.Name == "Idempotency-Key" {
					info.idempotent = true
				}
			}
			documented[method+" "+path] = info
		}
	}
	served := map[string]Route{}
	for _, r := range e.srv.Routes() {
		served[r.Method+" "+r.Pattern] = r
	}
	for name, r := range served {
		d, ok := documented[name]
		switch {
		case !ok:
			t.Errorf("%s is served but not in openapi.json", name)
		case d.scope != string(r.Scope):
			t.Errorf("%s: scope %q served, %q documented", name, r.Scope, d.scope)
		case d.idempotent != r.Idempotent:
			t.Errorf("%s: Idempotency-Key served %v, documented %v", name, r.Idempotent, d.idempotent)
		case d.public != (r.Scope == ""):
			t.Errorf("%s: public %v served, documented %v", name, r.Scope == "", d.public)
		}
	}
	for name := range documented {
		if _, ok := served[name]; !ok {
			t.Errorf("%s is in openapi.json but not served", name)
		}
	}

	// And the mux really routes each documented operation: without a key
	// an API route answers 401, a public one 200; never 404 or 405.
	param := regexp.MustCompile(`\{[^}]+\}`)
	names := make([]string, 0, len(documented))
	for n := range documented {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		method, path, _ := strings.Cut(name, " ")
		path = param.ReplaceAllString(path, "17000000000")
		r := e.do(call{method: method, path: path})
		want := http.StatusUnauthorized
		if documented[name].public {
			want = http.StatusOK
		}
		if r.status != want {
			t.Errorf("%s %s without a key: %d, want %d", method, path, r.status, want)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	r := e.ok(call{method: "GET", path: "/openapi.json"}, 200, nil)
	if !bytes.Equal(r.body, OpenAPI) || r.header.Get("Content-Type") != "application/json" {
		t.Fatal("/openapi.json does not serve the embedded document")
	}
}

// The checks in env.do are not vacuous: a document that disagrees with
// the server fails them.
func TestOpenAPICheckCatchesDrift(t *testing.T) {
	e := newEnv(t)
	e.addNumbers(x0)
	body := `{"a":"` + alice + `","b":"` + bob + `"}`
	e.noVerify = true
	res := e.ok(call{method: "POST", path: "/v1/bindings", key: e.admin(), body: body}, 201, nil)

	drifts := map[string]func(doc *openapi3.T){
		"undocumented response field": func(doc *openapi3.T) {
			delete(doc.Components.Schemas["Binding"].Value.Properties, "quarantine_until")
		},
		"missing response field": func(doc *openapi3.T) {
			s := doc.Components.Schemas["Binding"].Value
			s.Required = append(s.Required, "deleted_at")
		},
		"undocumented status": func(doc *openapi3.T) {
			doc.Paths.Value("/v1/bindings").Post.Responses.Delete("201")
		},
	}
	for name, drift := range drifts {
		t.Run(name, func(t *testing.T) {
			loader := openapi3.NewLoader()
			doc, err := loader.LoadFromData(OpenAPI)
			if err != nil {
				t.Fatal(err)
			}
			drift(doc)
			router, err := gorillamux.NewRouter(doc)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("POST", "/v1/bindings", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatal(err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
				RequestValidationInput: in, Status: res.status, Header: res.header, Body: io.NopCloser(bytes.NewReader(res.body)),
				Options: &openapi3filter.Options{IncludeResponseStatus: true},
			})
			if err == nil {
				t.Fatal("the drifted document accepts the response")
			}
		})
	}
}
