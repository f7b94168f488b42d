package ari

import (
	"encoding/json"
	"errors"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
)

// TestRESTErrorsFromTrace replays every error answer of rest-errors.jsonl.
func TestRESTErrorsFromTrace(t *testing.T) {
	traceFiles(t)
	lines := readTrace(t, filepath.Join(traceDir, "rest-errors.jsonl"))
	var req struct {
		Method, Path string
		Query        url.Values
	}
	checked := map[int]bool{}
	for _, l := range lines {
		switch l.Kind {
		case "request":
			if err := json.Unmarshal(l.Data, &req); err != nil {
				t.Fatal(err)
			}
		case "response":
			var resp struct {
				Status int
				Body   json.RawMessage
			}
			if err := json.Unmarshal(l.Data, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.Status < 400 {
				continue
			}
			checked[resp.Status] = true
			var body struct{ Message, Error string }
			json.Unmarshal(resp.Body, &body)
			want := &Error{Status: resp.Status, Method: req.Method, Path: req.Path, Message: body.Message + body.Error}

			t.Run(req.Method+" "+req.Path+" "+strconv.Itoa(resp.Status), func(t *testing.T) {
				c, seen := newRESTServer(t, resp.Status, string(resp.Body))
				err := c.do(t.Context(), req.Method, req.Path, req.Query, nil, nil)
				if r := <-seen; r.method != req.Method || r.path != "/ari"+req.Path {
					t.Errorf("sent %s %s", r.method, r.path)
				}
				var got *Error
				if !errors.As(err, &got) {
					t.Fatalf("error %v is not *Error", err)
				}
				if *got != *want {
					t.Errorf("error %+v, want %+v", got, want)
				}
				for status, sentinel := range map[int]error{400: ErrBadRequest, 404: ErrNotFound, 409: ErrConflict, 412: ErrPreconditionFailed} {
					if errors.Is(err, sentinel) != (status == resp.Status) {
						t.Errorf("errors.Is(%v, %v) = %v", err, sentinel, !(status == resp.Status))
					}
				}
			})
		}
	}
	for _, status := range []int{400, 404, 500} {
		if !checked[status] {
			t.Errorf("trace has no %d answer", status)
		}
	}
}

func TestError(t *testing.T) {
	tests := []struct {
		status int
		body   string
		is     error
		text   string
	}{
		{404, `{"message":"Channel not found"}`, ErrNotFound, "ari: POST /x: 404 Channel not found"},
		{500, `{"error":"Allocation failed"}`, nil, "ari: POST /x: 500 Allocation failed"},
		{409, `{"message":"Channel is not in the 'Down' state"}`, ErrConflict, "ari: POST /x: 409 Channel is not in the 'Down' state"},
		{412, `{"message":"Channel in invalid state"}`, ErrPreconditionFailed, "ari: POST /x: 412 Channel in invalid state"},
		{400, `{"message":"Endpoint must be specified"}`, ErrBadRequest, "ari: POST /x: 400 Endpoint must be specified"},
		{422, "", nil, "ari: POST /x: 422 Unprocessable Entity"},
		{503, "Service Unavailable\n", nil, "ari: POST /x: 503 Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			c, _ := newRESTServer(t, tt.status, tt.body)
			err := c.do(t.Context(), "POST", "/x", nil, nil, nil)
			if err == nil || err.Error() != tt.text {
				t.Errorf("error %q, want %q", err, tt.text)
			}
			for _, sentinel := range []error{ErrBadRequest, ErrNotFound, ErrConflict, ErrPreconditionFailed} {
				if errors.Is(err, sentinel) != (sentinel == tt.is) {
					t.Errorf("errors.Is(%v) = %v", sentinel, !(sentinel == tt.is))
				}
			}
		})
	}
}
