package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/privnum/privnum/ari"
)

// The trunk endpoints' options, read over ARI's dynamic configuration
// (GET /asterisk/config/dynamic/res_pjsip/endpoint/{id}), against the
// identity block of asterisk-conf/privnum-pjsip.conf. privnum masks every
// call itself (caller ID and connected line set to the virtual number,
// bridges joined with connected-line updates inhibited); these options are
// the second wall, and a few of them break the masked caller ID outright.

// truthy reports whether an option's value means yes: Asterisk renders
// booleans as "yes"/"no" or "true"/"false" depending on the option.
func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "on", "1", "y", "t":
		return true
	}
	return false
}

// EndpointOf returns the PJSIP endpoint an endpoint template or channel
// name dials through: "carrier" for "PJSIP/{number}@carrier",
// "PJSIP/carrier/sip:{number}@host" and "PJSIP/carrier"; "" when the
// technology is not PJSIP.
func EndpointOf(template string) string {
	rest, ok := strings.CutPrefix(template, "PJSIP/")
	if !ok {
		return ""
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 && !strings.Contains(rest[:at], "/") {
		return strings.TrimSpace(rest[at+1:])
	}
	ep, _, _ := strings.Cut(rest, "/")
	return strings.TrimSpace(ep)
}

func checkEndpoints(ctx context.Context, cfg Config) []Finding {
	states := map[string]string{}
	eps, epErr := cfg.ARI.Endpoints(ctx, "PJSIP")
	for _, e := range eps {
		states[e.Resource] = e.State
	}
	var out []Finding
	for _, in := range cfg.InboundEndpoints {
		out = append(out, checkEndpoint(ctx, cfg, in, true)...)
	}
	if cfg.OutboundEndpoint != "" && !slices.Contains(cfg.InboundEndpoints, cfg.OutboundEndpoint) {
		out = append(out, checkEndpoint(ctx, cfg, cfg.OutboundEndpoint, false)...)
		out = append(out, checkQualify(ctx, cfg, cfg.OutboundEndpoint, states, epErr)...)
	}
	return out
}

// checkEndpoint reads one endpoint and reports its identity options.
func checkEndpoint(ctx context.Context, cfg Config, id string, inbound bool) []Finding {
	name := "endpoint " + id
	attrs, err := cfg.ARI.DynamicConfig(ctx, "res_pjsip", "endpoint", id)
	switch {
	case errors.Is(err, ari.ErrNotFound):
		fix := "include asterisk-conf/privnum-pjsip.conf from pjsip.conf, or name your trunk with --endpoint-template"
		if inbound {
			fix = "include asterisk-conf/privnum-pjsip.conf from pjsip.conf, or name your inbound trunk with --message-endpoint PJSIP/NAME"
		}
		return []Finding{{Check: name + " exists", Status: Fail, Found: "no PJSIP endpoint " + id, Fix: fix}}
	case err != nil:
		return []Finding{{Check: name, Status: Fail, Found: "cannot read its configuration: " + err.Error(),
			Fix: "the ARI user needs read access to the dynamic configuration (res_ari_asterisk.so loaded)"}}
	}
	opt := make(map[string]string, len(attrs))
	for _, a := range attrs {
		opt[a.Attribute] = a.Value
	}
	var out []Finding
	bad := func(option string, st Status, found, fix string) {
		out = append(out, Finding{Check: name + " " + option, Status: st, Found: found, Fix: fix})
	}
	set := func(option, value string) string {
		return fmt.Sprintf("set %s=%s on endpoint %s in pjsip.conf (privnum-pjsip.conf), then pjsip reload", option, value, id)
	}
	connected := truthy(opt["send_connected_line"])
	for _, o := range []string{"send_pai", "send_rpid"} {
		if !truthy(opt[o]) {
			continue
		}
		header := map[string]string{"send_pai": "P-Asserted-Identity", "send_rpid": "Remote-Party-ID"}[o]
		switch {
		case connected:
			bad(o, Fail, fmt.Sprintf("%s=%s with send_connected_line=%s: a connected-line update goes out as a re-INVITE with %s; on Asterisk 22.10.1 that carried the other party's real number right after the bridge",
				o, opt[o], opt["send_connected_line"], header),
				set("send_connected_line", "no")+" (and "+o+"=no unless the carrier requires "+header+")")
		case inbound:
			bad(o, Warn, fmt.Sprintf("%s=%s on the inbound trunk: only the outbound endpoint may need %s", o, opt[o], header), set(o, "no"))
		}
	}
	if connected {
		bad("send_connected_line", Warn, "send_connected_line="+opt["send_connected_line"]+": Asterisk sends connected-line updates (UPDATE or re-INVITE) on this trunk; privnum inhibits them on its bridges, this option is the wall behind that",
			set("send_connected_line", "no"))
	}
	if truthy(opt["trust_connected_line"]) {
		bad("trust_connected_line", Warn, "trust_connected_line="+opt["trust_connected_line"]+": identity the carrier sends mid-call (a party's real number) becomes a connected-line update towards the other party",
			set("trust_connected_line", "no"))
	}
	if truthy(opt["trust_id_outbound"]) {
		bad("trust_id_outbound", Warn, "trust_id_outbound="+opt["trust_id_outbound"]+": identities marked private (CLIR) still go out in PAI/RPID",
			set("trust_id_outbound", "no"))
	}
	for _, o := range []string{"send_diversion", "send_history_info"} {
		if truthy(opt[o]) {
			bad(o, Warn, o+"="+opt[o]+": redirecting information (the original called number, who forwarded the call) can carry a real number",
				set(o, "no"))
		}
	}
	if !inbound && opt["from_user"] != "" && !truthy(opt["send_pai"]) {
		bad("from_user", Warn, "from_user="+opt["from_user"]+": the From of every call to the hidden party shows "+opt["from_user"]+" instead of the virtual number, so the called party cannot see or call back the virtual number",
			fmt.Sprintf("remove from_user from endpoint %s in pjsip.conf (set it only together with send_pai=yes when the carrier authenticates by the From user; see privnum-pjsip.conf)", id))
	}
	if inbound && cfg.SMSRelay && opt["message_context"] == "" {
		bad("message_context", Warn, "no message_context: a text message to a virtual number runs through the dialplan and enters Stasis as a Message/ast_msg_queue pseudo-channel instead of being relayed",
			set("message_context", "privnum-messages"))
	}
	if out == nil {
		out = []Finding{{Check: name, Status: OK, Found: "identity options keep real numbers in (send_connected_line, send_pai, send_rpid, trust_id_outbound, from_user)"}}
	}
	return out
}

// checkQualify reads the outbound endpoint's AORs: a contact to dial, and
// qualify settings that would mark the carrier unavailable.
func checkQualify(ctx context.Context, cfg Config, id string, states map[string]string, epErr error) []Finding {
	attrs, err := cfg.ARI.DynamicConfig(ctx, "res_pjsip", "endpoint", id)
	if err != nil {
		return nil // reported by checkEndpoint
	}
	var aors []string
	for _, a := range attrs {
		if a.Attribute == "aors" {
			for _, s := range strings.Split(a.Value, ",") {
				if s = strings.TrimSpace(s); s != "" {
					aors = append(aors, s)
				}
			}
		}
	}
	if len(aors) == 0 {
		return []Finding{{Check: "endpoint " + id + " aors", Status: Fail, Found: "endpoint " + id + " has no aors: there is no contact to dial the hidden party at",
			Fix: fmt.Sprintf("set aors=%s on endpoint %s and add a [%s] type=aor section with contact=sip:CARRIER:5060 (privnum-pjsip.conf)", id, id, id)}}
	}
	var out []Finding
	qualified := false
	for _, aor := range aors {
		name := "aor " + aor
		list, err := cfg.ARI.DynamicConfig(ctx, "res_pjsip", "aor", aor)
		if errors.Is(err, ari.ErrNotFound) {
			out = append(out, Finding{Check: name, Status: Fail, Found: "endpoint " + id + " names aor " + aor + ", which does not exist",
				Fix: fmt.Sprintf("add a [%s] type=aor section with contact=sip:CARRIER:5060 to pjsip.conf", aor)})
			continue
		}
		if err != nil {
			out = append(out, Finding{Check: name, Status: Fail, Found: "cannot read it: " + err.Error()})
			continue
		}
		opt := map[string]string{}
		for _, a := range list {
			opt[a.Attribute] = a.Value
		}
		freq, _ := strconv.ParseFloat(opt["qualify_frequency"], 64)
		timeout, _ := strconv.ParseFloat(opt["qualify_timeout"], 64)
		maxContacts, _ := strconv.Atoi(opt["max_contacts"])
		if opt["contact"] == "" && maxContacts == 0 {
			out = append(out, Finding{Check: name + " contact", Status: Fail, Found: "aor " + aor + " has no contact and accepts no registration: nothing to dial",
				Fix: fmt.Sprintf("set contact=sip:CARRIER:5060 in [%s] type=aor", aor)})
		}
		if freq <= 0 {
			continue
		}
		qualified = true
		if truthy(opt["qualify_2xx_only"]) {
			out = append(out, Finding{Check: name + " qualify_2xx_only", Status: Warn,
				Found: "qualify_2xx_only=" + opt["qualify_2xx_only"] + ": a carrier that answers OPTIONS with an error (405, 404) is marked Unavailable and is not dialed",
				Fix:   fmt.Sprintf("set qualify_2xx_only=no in [%s] type=aor", aor)})
		}
		if timeout > 0 && timeout < 1 {
			out = append(out, Finding{Check: name + " qualify_timeout", Status: Warn,
				Found: fmt.Sprintf("qualify_timeout=%s s: a carrier slower than that to answer OPTIONS is marked Unavailable and is not dialed", opt["qualify_timeout"]),
				Fix:   fmt.Sprintf("set qualify_timeout=3 in [%s] type=aor", aor)})
		}
	}
	switch st := states[id]; {
	case epErr != nil:
		out = append(out, Finding{Check: "endpoint " + id + " state", Status: Warn, Found: "cannot read endpoint states: " + epErr.Error(), Fix: "load res_ari_endpoints.so"})
	case st != "online" && qualified:
		out = append(out, Finding{Check: "endpoint " + id + " state", Status: Fail,
			Found: "endpoint " + id + " is " + st + ": its contact does not answer the qualify OPTIONS, so Asterisk marks it Unavailable and calls to hidden parties fail",
			Fix:   "check that the carrier is reachable from Asterisk (pjsip show contacts); if it ignores OPTIONS, set qualify_frequency=0 on its aor"})
	case st != "online":
		out = append(out, Finding{Check: "endpoint " + id + " state", Status: Fail, Found: "endpoint " + id + " is " + st + ": no usable contact",
			Fix: "check its aor's contact (pjsip show aors)"})
	}
	if out == nil {
		q := "not qualified"
		if qualified {
			q = "qualified"
		}
		out = []Finding{{Check: "endpoint " + id + " reachability", Status: OK, Found: fmt.Sprintf("online, %s, aor %s", q, strings.Join(aors, ","))}}
	}
	return out
}
