package e2e

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// A UA is one SIP peer of the switch, written with sipgo: the caller's trunk
// (it sends calls in to trunk-in) or the carrier (it receives the hidden
// legs Asterisk dials on the carrier endpoint). It listens on its own
// loopback address and records every message it receives, per call.
type UA struct {
	name    string
	ip      string
	port    int
	switch_ string // Asterisk's SIP address, host:port

	ua  *sipgo.UserAgent
	srv *sipgo.Server
	cli *sipgo.Client
	pc  net.PacketConn

	mu       sync.Mutex
	calls    map[string]*Call // by Call-ID
	incoming []*Call          // INVITEs received, in order
	policy   map[string]Policy
	arrived  chan struct{} // closed and replaced whenever an INVITE arrives
	messages []Msg         // out-of-dialog MESSAGEs received, in order
}

// Policy is what a UA does on its own with an INVITE to a number, before
// the test steps in (the test can still Ring or Answer).
type Policy int

const (
	// Manual: nothing; the test decides.
	Manual Policy = iota
	// Ringing: 180 at once.
	Ringing
	// AutoAnswer: 180 and 200 at once.
	AutoAnswer
	// AutoBusy: 486 at once.
	AutoBusy
)

// Msg is one message a UA received.
type Msg struct {
	At     time.Time
	Method string // request method, "" for a response
	Status int    // response status, 0 for a request
	CSeq   string // e.g. "1 INVITE"
	Text   string // the whole message as received (parsed and re-serialised)
	Req    *sip.Request
	Res    *sip.Response
}

func (m Msg) String() string {
	if m.Method != "" {
		return m.Method
	}
	return fmt.Sprintf("%d (%s)", m.Status, m.CSeq)
}

// Header returns the values of a header of the message.
func (m Msg) Header(name string) []string {
	var hs []sip.Header
	if m.Req != nil {
		hs = m.Req.GetHeaders(name)
	} else {
		hs = m.Res.GetHeaders(name)
	}
	var out []string
	for _, h := range hs {
		out = append(out, h.Value())
	}
	return out
}

// Call is one dialog of a UA: a call it placed (Out) or received.
type Call struct {
	ua  *UA
	Out bool

	invite *sip.Request // the initial INVITE (sent or received)
	tx     sip.ServerTransaction
	cmds   chan func() bool // for a received INVITE still pending: run in the handler

	mu         sync.Mutex
	msgs       []Msg
	sentAt     time.Time // Out: when the INVITE was handed to the transport
	ReceivedAt time.Time // in: when the INVITE arrived
	localTag   string
	remoteTag  string
	target     sip.Uri // remote target (Contact) for in-dialog requests
	cseq       uint32
	final      int // final status of the initial INVITE (0: none yet)
	answeredAt time.Time
	ended      bool // BYE sent or received, CANCEL received, or final non-2xx
	endedAt    time.Time
	byeFromFar bool
	cancelled  bool
	changed    chan struct{}
}

func newUA(t *testing.T, name, ip, switchAddr string) *UA {
	t.Helper()
	pc, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatalf("%s UA: listen on %s: %v", name, ip, err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	u := &UA{name: name, ip: ip, port: port, switch_: switchAddr, pc: pc,
		calls: map[string]*Call{}, policy: map[string]Policy{}, arrived: make(chan struct{})}
	u.ua, err = sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname(ip),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {})))
	if err != nil {
		t.Fatal(err)
	}
	u.srv, err = sipgo.NewServer(u.ua)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	u.cli, err = sipgo.NewClient(u.ua, sipgo.WithClientHostname(ip), sipgo.WithClientPort(port), sipgo.WithClientConnectionAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	u.srv.OnInvite(u.onInvite)
	u.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { u.inDialog(req, tx, 0) })
	u.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) { u.inDialog(req, tx, 200) })
	u.srv.OnUpdate(func(req *sip.Request, tx sip.ServerTransaction) { u.inDialog(req, tx, 200) })
	u.srv.OnInfo(func(req *sip.Request, tx sip.ServerTransaction) { u.inDialog(req, tx, 200) })
	u.srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) { u.inDialog(req, tx, 200) })
	u.srv.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) { u.inDialog(req, tx, 603) })
	u.srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		if req.To().Params.Has("tag") {
			u.inDialog(req, tx, 200)
			return
		}
		u.mu.Lock()
		u.messages = append(u.messages, Msg{At: time.Now(), Method: string(req.Method), Text: req.String(), Req: req})
		u.mu.Unlock()
		tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil))
	})
	u.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	u.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		// A CANCEL that matched no pending INVITE (the transaction layer
		// answers the others itself).
		u.inDialog(req, tx, 481)
	})
	go u.srv.ServeUDP(pc)
	t.Cleanup(func() { u.ua.Close(); pc.Close() })
	return u
}

// Addr is the UA's SIP address, ip:port.
func (u *UA) Addr() string { return net.JoinHostPort(u.ip, strconv.Itoa(u.port)) }

// SetPolicy says what the UA does by itself with INVITEs to number (the
// user part of the Request-URI, as Asterisk sends it).
func (u *UA) SetPolicy(number string, p Policy) {
	u.mu.Lock()
	u.policy[number] = p
	u.mu.Unlock()
}

func sdp(ip string, port int) []byte {
	return []byte(fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n",
		time.Now().UnixNano()%1e9, ip, ip, port))
}

func (u *UA) contact(user string) *sip.ContactHeader {
	return &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: u.ip, Port: u.port}}
}

// Invite places a call from number from to number to through the switch
// and returns at once; the responses arrive on the Call.
func (u *UA) Invite(t *testing.T, from, to string) *Call {
	t.Helper()
	host, portS, _ := net.SplitHostPort(u.switch_)
	port, _ := strconv.Atoi(portS)
	ruri := sip.Uri{Scheme: "sip", User: to, Host: host, Port: port}
	req := sip.NewRequest(sip.INVITE, ruri)
	c := &Call{ua: u, Out: true, localTag: sip.GenerateTagN(16), cseq: 1, changed: make(chan struct{})}
	fromH := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: u.ip}}
	fromH.Params.Add("tag", c.localTag)
	req.AppendHeader(fromH)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: to, Host: host}})
	callID := sip.CallIDHeader(fmt.Sprintf("%s-%s@%s", u.name, sip.GenerateTagN(20), u.ip))
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	req.AppendHeader(u.contact(from))
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"))
	ct := sip.ContentTypeHeader("application/sdp")
	req.AppendHeader(&ct)
	req.SetBody(sdp(u.ip, 40000+int(time.Now().UnixNano()%10000)*2))
	c.invite = req
	u.mu.Lock()
	u.calls[string(callID)] = c
	u.mu.Unlock()

	c.mu.Lock()
	c.sentAt = time.Now()
	c.mu.Unlock()
	tx, err := u.cli.TransactionRequest(context.Background(), req)
	if err != nil {
		t.Fatalf("%s: INVITE %s -> %s: %v", u.name, from, to, err)
	}
	go c.readResponses(tx)
	return c
}

func (c *Call) readResponses(tx sip.ClientTransaction) {
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			c.record(Msg{Status: res.StatusCode, Res: res})
			if res.IsProvisional() {
				continue
			}
			c.mu.Lock()
			c.final = res.StatusCode
			if res.IsSuccess() {
				c.answeredAt = time.Now()
				if to := res.To(); to != nil {
					c.remoteTag, _ = to.Params.Get("tag")
				}
				if ct := res.Contact(); ct != nil {
					c.target = ct.Address
				} else {
					c.target = c.invite.Recipient
				}
			} else {
				c.ended, c.endedAt = true, time.Now()
			}
			c.notifyLocked()
			c.mu.Unlock()
			if res.IsSuccess() {
				c.sendAck(res)
			}
			return
		case <-tx.Done():
			c.mu.Lock()
			if c.final == 0 {
				c.final = -1 // transaction failed (timeout)
				c.ended, c.endedAt = true, time.Now()
				c.notifyLocked()
			}
			c.mu.Unlock()
			return
		}
	}
}

func (c *Call) sendAck(res *sip.Response) {
	c.mu.Lock()
	ack := sip.NewRequest(sip.ACK, *c.target.Clone())
	c.mu.Unlock()
	ack.AppendHeader(cloneFrom(c.invite.From()))
	ack.AppendHeader(cloneTo(res.To()))
	ack.AppendHeader(cloneCallID(c.invite.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: c.invite.CSeq().SeqNo, MethodName: sip.ACK})
	ack.AppendHeader(c.invite.Contact().Clone())
	if err := c.ua.cli.WriteRequest(ack); err != nil {
		c.ua.errorf("ACK: %v", err)
	}
}

func (u *UA) errorf(format string, args ...any) {
	// Failures inside handlers show up as missing messages; keep a trace.
	fmt.Printf("e2e %s UA: %s\n", u.name, fmt.Sprintf(format, args...))
}

// Cancel sends CANCEL for a call this UA placed that has no final answer.
func (c *Call) Cancel(t *testing.T) {
	t.Helper()
	inv := c.invite
	req := sip.NewRequest(sip.CANCEL, inv.Recipient)
	req.AppendHeader(inv.Via().Clone())
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(cloneFrom(inv.From()))
	req.AppendHeader(cloneTo(inv.To()))
	req.AppendHeader(cloneCallID(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	tx, err := c.ua.cli.TransactionRequest(context.Background(), req)
	if err != nil {
		t.Fatalf("CANCEL: %v", err)
	}
	go func() {
		defer tx.Terminate()
		select {
		case res := <-tx.Responses():
			c.record(Msg{Status: res.StatusCode, Res: res})
		case <-tx.Done():
		}
	}()
}

// Hangup sends BYE on an established call.
func (c *Call) Hangup(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	if c.remoteTag == "" {
		c.mu.Unlock()
		t.Fatalf("%s: BYE on a call that is not established", c.ua.name)
	}
	c.cseq++
	seq := c.cseq
	req := sip.NewRequest(sip.BYE, *c.target.Clone())
	local, remote := c.localParty(), c.remoteParty()
	c.ended, c.endedAt = true, time.Now()
	c.notifyLocked()
	c.mu.Unlock()
	from := &sip.FromHeader{Address: local.Address}
	from.Params.Add("tag", c.localTag)
	to := &sip.ToHeader{Address: remote.Address}
	to.Params.Add("tag", c.remoteTag)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(cloneCallID(c.invite.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.BYE})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.ua.cli.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: BYE: %v", c.ua.name, err)
	}
	c.record(Msg{Status: res.StatusCode, Res: res})
	if res.StatusCode != 200 {
		t.Errorf("%s: BYE answered %d:\n%s\nfor:\n%s", c.ua.name, res.StatusCode, res, req)
	}
}

// SendDTMF sends digits on an established call as SIP INFO
// (application/dtmf-relay), one request per digit, gap apart.
func (c *Call) SendDTMF(t *testing.T, digits string, gap time.Duration) {
	t.Helper()
	for _, d := range digits {
		c.mu.Lock()
		if c.remoteTag == "" {
			c.mu.Unlock()
			t.Fatalf("%s: INFO on a call that is not established", c.ua.name)
		}
		c.cseq++
		seq := c.cseq
		req := sip.NewRequest(sip.INFO, *c.target.Clone())
		local, remote := c.localParty(), c.remoteParty()
		c.mu.Unlock()
		from := &sip.FromHeader{Address: local.Address}
		from.Params.Add("tag", c.localTag)
		to := &sip.ToHeader{Address: remote.Address}
		to.Params.Add("tag", c.remoteTag)
		req.AppendHeader(from)
		req.AppendHeader(to)
		req.AppendHeader(cloneCallID(c.invite.CallID()))
		req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.INFO})
		req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
		req.SetBody([]byte("Signal=" + string(d) + "\r\nDuration=160\r\n"))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := c.ua.cli.Do(ctx, req)
		cancel()
		if err != nil {
			t.Fatalf("%s: INFO %c: %v", c.ua.name, d, err)
		}
		c.record(Msg{Status: res.StatusCode, Res: res})
		if res.StatusCode != 200 {
			t.Fatalf("%s: INFO %c answered %d:\n%s", c.ua.name, d, res.StatusCode, res)
		}
		time.Sleep(gap)
	}
}

// localParty and remoteParty are the dialog's From/To as this UA sends
// them; caller holds c.mu.
func (c *Call) localParty() *sip.FromHeader {
	if c.Out {
		return c.invite.From()
	}
	to := c.invite.To()
	return &sip.FromHeader{Address: to.Address}
}

func (c *Call) remoteParty() *sip.ToHeader {
	if c.Out {
		return c.invite.To()
	}
	f := c.invite.From()
	return &sip.ToHeader{Address: f.Address}
}

func (c *Call) record(m Msg) {
	m.At = time.Now()
	if m.Req != nil {
		m.Method = string(m.Req.Method)
		m.Text = m.Req.String()
		if cs := m.Req.CSeq(); cs != nil {
			m.CSeq = cs.Value()
		}
	} else {
		m.Text = m.Res.String()
		if cs := m.Res.CSeq(); cs != nil {
			m.CSeq = cs.Value()
		}
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.notifyLocked()
	c.mu.Unlock()
}

func (c *Call) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// onInvite handles an initial INVITE (a new call to this UA) or a
// re-INVITE on a call.
func (u *UA) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	now := time.Now()
	if to := req.To(); to != nil {
		if _, ok := to.Params.Get("tag"); ok {
			u.inDialog(req, tx, 200)
			return
		}
	}
	c := &Call{ua: u, invite: req, tx: tx, ReceivedAt: now, localTag: sip.GenerateTagN(16),
		cmds: make(chan func() bool, 4), changed: make(chan struct{})}
	if ct := req.Contact(); ct != nil {
		c.target = ct.Address
	}
	c.record(Msg{Req: req})
	c.msgs[0].At = now
	tx.OnCancel(func(r *sip.Request) {
		c.record(Msg{Req: r})
		c.mu.Lock()
		c.cancelled, c.ended, c.endedAt = true, true, time.Now()
		c.final = 487
		c.notifyLocked()
		c.mu.Unlock()
	})
	u.mu.Lock()
	u.calls[req.CallID().Value()] = c
	u.incoming = append(u.incoming, c)
	p := u.policy[req.Recipient.User]
	close(u.arrived)
	u.arrived = make(chan struct{})
	u.mu.Unlock()

	switch p {
	case Ringing:
		c.respond(180, "Ringing", nil)
	case AutoAnswer:
		c.respond(180, "Ringing", nil)
		c.respond(200, "OK", sdp(u.ip, 50000+int(now.UnixNano()%5000)*2))
	case AutoBusy:
		c.respond(486, "Busy Here", nil)
	}
	// Serve the test's commands until the INVITE transaction has its
	// final response (or is cancelled).
	for {
		c.mu.Lock()
		done := c.final != 0
		c.mu.Unlock()
		if done {
			// Keep the transaction until the ACK of a 2xx or of an error
			// is in (the transaction layer retransmits until then).
			select {
			case <-tx.Acks():
			case <-tx.Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
		select {
		case f := <-c.cmds:
			f()
		case <-tx.Done():
			return
		}
	}
}

// respond answers the pending INVITE; only from the handler goroutine.
func (c *Call) respond(status int, reason string, body []byte) {
	res := sip.NewResponseFromRequest(c.invite, status, reason, body)
	if to := res.To(); to != nil && status > 100 {
		to.Params.Remove("tag")
		to.Params.Add("tag", c.localTag) // one tag for all responses: the dialog's
	}
	if status < 300 {
		res.AppendHeader(c.ua.contact(c.invite.Recipient.User))
	}
	if body != nil {
		ct := sip.ContentTypeHeader("application/sdp")
		res.AppendHeader(&ct)
	}
	c.mu.Lock()
	if c.final != 0 {
		c.mu.Unlock()
		return
	}
	if status >= 200 {
		c.final = status
		if status < 300 {
			c.answeredAt = time.Now()
			c.remoteTag, _ = c.invite.From().Params.Get("tag")
		} else {
			c.ended, c.endedAt = true, time.Now()
		}
		c.notifyLocked()
	}
	c.mu.Unlock()
	if err := c.tx.Respond(res); err != nil {
		c.ua.errorf("respond %d: %v", status, err)
	}
}

// do runs f in the INVITE handler; false if the INVITE is no longer pending.
func (c *Call) do(f func()) bool {
	c.mu.Lock()
	pending := c.final == 0
	c.mu.Unlock()
	if !pending {
		return false
	}
	select {
	case c.cmds <- func() bool { f(); return true }:
		return true
	case <-c.tx.Done():
		return false
	}
}

// Ring sends 180 on a received call.
func (c *Call) Ring() { c.do(func() { c.respond(180, "Ringing", nil) }) }

// Answer sends 200 with SDP on a received call.
func (c *Call) Answer() {
	c.do(func() { c.respond(200, "OK", sdp(c.ua.ip, 52000)) })
}

// inDialog handles a request inside an existing dialog (or a stray one).
func (u *UA) inDialog(req *sip.Request, tx sip.ServerTransaction, status int) {
	u.mu.Lock()
	c := u.calls[req.CallID().Value()]
	u.mu.Unlock()
	if c == nil {
		if status > 0 {
			tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}
		return
	}
	c.record(Msg{Req: req})
	if status == 0 {
		return // ACK
	}
	var body []byte
	if req.IsInvite() && status == 200 {
		body = sdp(u.ip, 52000)
	}
	res := sip.NewResponseFromRequest(req, status, "OK", body)
	if body != nil {
		ct := sip.ContentTypeHeader("application/sdp")
		res.AppendHeader(&ct)
		res.AppendHeader(u.contact(""))
	}
	if req.Method == sip.BYE {
		c.mu.Lock()
		if !c.ended {
			c.ended, c.endedAt, c.byeFromFar = true, time.Now(), true
		}
		c.notifyLocked()
		c.mu.Unlock()
	}
	tx.Respond(res)
	if req.IsInvite() {
		select {
		case <-tx.Acks():
		case <-tx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// WaitInvite waits for the first INVITE to number (Request-URI user, with
// or without "+", national or E.164) that arrived after since.
func (u *UA) WaitInvite(t *testing.T, number string, since time.Time, within time.Duration) *Call {
	t.Helper()
	c := u.waitInvite(number, since, within)
	if c == nil {
		t.Fatalf("%s: no INVITE to %s within %v; got: %s", u.name, number, within, u.summary())
	}
	return c
}

func (u *UA) waitInvite(number string, since time.Time, within time.Duration) *Call {
	deadline := time.After(within)
	for {
		u.mu.Lock()
		for _, c := range u.incoming {
			if !c.ReceivedAt.Before(since) && sameNumber(c.invite.Recipient.User, number) {
				u.mu.Unlock()
				return c
			}
		}
		ch := u.arrived
		u.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return nil
		}
	}
}

// InvitesTo returns the calls received for number since since.
func (u *UA) InvitesTo(number string, since time.Time) []*Call {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*Call
	for _, c := range u.incoming {
		if !c.ReceivedAt.Before(since) && sameNumber(c.invite.Recipient.User, number) {
			out = append(out, c)
		}
	}
	return out
}

// InvitesSince returns every call received since since.
func (u *UA) InvitesSince(since time.Time) []*Call {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*Call
	for _, c := range u.incoming {
		if !c.ReceivedAt.Before(since) {
			out = append(out, c)
		}
	}
	return out
}

func (u *UA) summary() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var b strings.Builder
	for _, c := range u.incoming {
		fmt.Fprintf(&b, "[INVITE %s at %s] ", c.invite.Recipient.User, c.ReceivedAt.Format("15:04:05.000"))
	}
	if b.Len() == 0 {
		return "nothing"
	}
	return b.String()
}

// sameNumber compares a Request-URI or From user with a number given in
// national or E.164 form (+86 only, the region of these tests).
func sameNumber(a, b string) bool { return nsn(a) == nsn(b) }

func nsn(s string) string {
	s = strings.TrimPrefix(s, "+")
	if len(s) == 13 && strings.HasPrefix(s, "86") {
		s = s[2:]
	}
	return s
}

// Wait waits until cond holds for the call (checked under its lock) or
// within passes; it reports whether cond held.
func (c *Call) Wait(within time.Duration, cond func(c *Call) bool) bool {
	deadline := time.After(within)
	for {
		c.mu.Lock()
		ok := cond(c)
		ch := c.changed
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// Final waits for the final response to the INVITE (placed calls) or the
// final status the UA gave (received calls).
func (c *Call) Final(t *testing.T, within time.Duration) int {
	t.Helper()
	if !c.Wait(within, func(c *Call) bool { return c.final != 0 }) {
		t.Fatalf("%s: no final response to INVITE %s within %v; messages: %s", c.ua.name, c.invite.Recipient.User, within, c.Trace())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.final
}

// WaitEnded waits until the call ended (BYE/CANCEL received or sent, or a
// final error).
func (c *Call) WaitEnded(within time.Duration) bool {
	return c.Wait(within, func(c *Call) bool { return c.ended })
}

// Ended reports whether the call ended, and whether by a BYE from the far
// end.
func (c *Call) Ended() (ended, byFar bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended, c.byeFromFar
}

// Msgs returns the messages the UA received on this call.
func (c *Call) Msgs() []Msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Msg(nil), c.msgs...)
}

// Trace is a one-line list of what the UA received on the call.
func (c *Call) Trace() string {
	var parts []string
	for _, m := range c.Msgs() {
		parts = append(parts, m.String())
	}
	return strings.Join(parts, ", ")
}

// Dump is every message received on the call, in full.
func (c *Call) Dump() string {
	var b strings.Builder
	for _, m := range c.Msgs() {
		fmt.Fprintf(&b, "---- %s received at %s\n%s\n", c.ua.name, m.At.Format("15:04:05.000000"), m.Text)
	}
	return b.String()
}

// Invite returns the call's initial INVITE.
func (c *Call) Invite() *sip.Request { return c.invite }

// SentAt is when a placed call's INVITE went out.
func (c *Call) SentAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sentAt
}

// AnsweredAt is when the call was answered (zero if it was not).
func (c *Call) AnsweredAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answeredAt
}

// EndedAt is when the call ended.
func (c *Call) EndedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endedAt
}

func cloneFrom(h *sip.FromHeader) *sip.FromHeader {
	return &sip.FromHeader{DisplayName: h.DisplayName, Address: *h.Address.Clone(), Params: h.Params.Clone()}
}

func cloneTo(h *sip.ToHeader) *sip.ToHeader {
	return &sip.ToHeader{DisplayName: h.DisplayName, Address: *h.Address.Clone(), Params: h.Params.Clone()}
}

func cloneCallID(h *sip.CallIDHeader) *sip.CallIDHeader {
	v := *h
	return &v
}

// SendMessage sends a SIP MESSAGE (text/plain) from the number from to the
// number to through the switch and returns the final status.
func (u *UA) SendMessage(t *testing.T, from, to, body string) int {
	t.Helper()
	host, portS, _ := net.SplitHostPort(u.switch_)
	port, _ := strconv.Atoi(portS)
	req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: to, Host: host, Port: port})
	fromH := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: u.ip}}
	fromH.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(fromH)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: to, Host: host}})
	callID := sip.CallIDHeader(fmt.Sprintf("%s-msg-%s@%s", u.name, sip.GenerateTagN(20), u.ip))
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.MESSAGE})
	ct := sip.ContentTypeHeader("text/plain")
	req.AppendHeader(&ct)
	req.SetBody([]byte(body))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := u.cli.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: MESSAGE %s -> %s: %v", u.name, from, to, err)
	}
	return res.StatusCode
}

// Messages returns the out-of-dialog MESSAGEs received since.
func (u *UA) Messages(since time.Time) []Msg {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []Msg
	for _, m := range u.messages {
		if !m.At.Before(since) {
			out = append(out, m)
		}
	}
	return out
}
