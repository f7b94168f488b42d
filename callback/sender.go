package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/privnum/privnum/webhook"
)

// HTTPSender posts the message as JSON to the operator's SMS gateway, signed
// like privnum's webhooks (header Privnum-Signature, see webhook.Verify).
type HTTPSender struct {
	// URL receives the POST.
	URL string
	// Secret signs the body.
	Secret string
	// Client defaults to a client with a 10 s timeout.
	Client *http.Client
}

// Send posts m; any non-2xx answer is an error.
func (h HTTPSender) Send(ctx context.Context, m Message) error {
	if h.URL == "" {
		return errors.New("no message gateway configured (set PRIVNUM_MESSAGE_URL)")
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("message gateway: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(h.Secret, time.Now(), body))
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("message gateway: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("message gateway answered %s", resp.Status)
	}
	return nil
}
