package arisim

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// What a configuration check reads: the loaded modules, the PJSIP objects
// over ARI's dynamic configuration, and the endpoints' states. The defaults
// are what Asterisk 22.10.1 answered in the doctor-reads trace: its module
// list, and its attribute lists of a PJSIP endpoint and an AOR (every
// attribute, in Asterisk's order). Each trunk (Options.Trunks, AddTrunk) is
// an endpoint with those attributes, its own context and message_context,
// and, except for the inbound trunk, an AOR of its own name; tests change
// them with SetModule, SetEndpointOption, SetAOROption and
// SetContactReachable.

//go:embed asterisk22.json
var asterisk22JSON []byte

// wireModule is ARI's Module.
type wireModule struct {
	Name         string `json:"name"`
	Description  string `json:"description"`
	UseCount     int    `json:"use_count"`
	Status       string `json:"status"`
	SupportLevel string `json:"support_level"`
}

// wireConfigTuple is ARI's ConfigTuple.
type wireConfigTuple struct {
	Attribute string `json:"attribute"`
	Value     string `json:"value"`
}

// asterisk22 is the embedded default configuration.
type asterisk22 struct {
	Modules  []wireModule      `json:"modules"`
	Endpoint []wireConfigTuple `json:"endpoint"`
	AOR      []wireConfigTuple `json:"aor"`
}

func loadAsterisk22() asterisk22 {
	var a asterisk22
	if err := json.Unmarshal(asterisk22JSON, &a); err != nil {
		panic("arisim: embedded asterisk22.json: " + err.Error())
	}
	return a
}

// pjsipConfig is the simulator's configuration state beyond the trunks'
// contexts; s.mu guards it.
type pjsipConfig struct {
	base asterisk22
	// modules are the loaded modules, in Asterisk's order.
	modules []wireModule
	// endpointOpts and aorOpts override the base attributes per object id.
	endpointOpts map[string]map[string]string
	aorOpts      map[string]map[string]string
	// noAOR lists trunks whose AOR was removed; unreachable the AORs whose
	// contact does not answer its qualify OPTIONS.
	noAOR       map[string]bool
	unreachable map[string]bool
}

func newPJSIPConfig() pjsipConfig {
	base := loadAsterisk22()
	return pjsipConfig{
		base:         base,
		modules:      slices.Clone(base.Modules),
		endpointOpts: map[string]map[string]string{},
		aorOpts:      map[string]map[string]string{},
		noAOR:        map[string]bool{},
		unreachable:  map[string]bool{},
	}
}

// SetModule sets the status of module name ("Running", "Not Running"), adding
// it if it is not loaded; status "" unloads it, so that it is missing from
// /asterisk/modules and GET /asterisk/modules/{name} answers 404.
func (s *Sim) SetModule(name, status string) {
	s.mu.Lock()
	defer s.unlockNotify()
	i := slices.IndexFunc(s.cfg.modules, func(m wireModule) bool { return m.Name == name })
	switch {
	case status == "" && i >= 0:
		s.cfg.modules = slices.Delete(s.cfg.modules, i, i+1)
	case status == "":
	case i >= 0:
		s.cfg.modules[i].Status = status
	default:
		s.cfg.modules = append(s.cfg.modules, wireModule{Name: name, Description: name, Status: status, SupportLevel: "core"})
	}
}

// SetEndpointOption sets a pjsip.conf option of the PJSIP endpoint of trunk
// (e.g. "send_pai", "yes"), as GET /asterisk/config/dynamic/res_pjsip/endpoint
// reports it. "context" changes the trunk's dialplan context and
// "message_context" its message context.
func (s *Sim) SetEndpointOption(trunk, option, value string) {
	s.mu.Lock()
	defer s.unlockNotify()
	switch option {
	case "context":
		s.trunks[trunk] = value
	case "message_context":
		if value == "" {
			delete(s.msgContexts, trunk)
		} else {
			s.msgContexts[trunk] = value
		}
	default:
		setOpt(s.cfg.endpointOpts, trunk, option, value)
	}
}

// SetAOROption sets an option of the AOR named aor (e.g. "qualify_frequency",
// "60"), creating the AOR if the trunk of that name had none.
func (s *Sim) SetAOROption(aor, option, value string) {
	s.mu.Lock()
	defer s.unlockNotify()
	delete(s.cfg.noAOR, aor)
	setOpt(s.cfg.aorOpts, aor, option, value)
}

// RemoveAOR deletes the AOR named aor: the dynamic configuration answers
// 404 for it, and an endpoint naming it has no contact (offline).
func (s *Sim) RemoveAOR(aor string) {
	s.mu.Lock()
	defer s.unlockNotify()
	s.cfg.noAOR[aor] = true
}

// SetContactReachable says whether the contact of aor answers its qualify
// OPTIONS. An unreachable contact makes the endpoints using aor offline.
func (s *Sim) SetContactReachable(aor string, ok bool) {
	s.mu.Lock()
	defer s.unlockNotify()
	s.cfg.unreachable[aor] = !ok
}

func setOpt(m map[string]map[string]string, id, option, value string) {
	if m[id] == nil {
		m[id] = map[string]string{}
	}
	m[id][option] = value
}

// endpointConfig returns the attributes of trunk's endpoint; s.mu held.
func (s *Sim) endpointConfig(trunk string) ([]wireConfigTuple, bool) {
	ctx, ok := s.trunks[trunk]
	if !ok {
		return nil, false
	}
	aors := trunk
	if trunk == s.opts.InboundTrunk || s.cfg.noAOR[trunk] {
		aors = ""
	}
	fixed := map[string]string{"context": ctx, "message_context": s.msgContexts[trunk], "aors": aors}
	out := make([]wireConfigTuple, len(s.cfg.base.Endpoint))
	for i, t := range s.cfg.base.Endpoint {
		out[i] = t
		if v, ok := fixed[t.Attribute]; ok {
			out[i].Value = v
		}
		if v, ok := s.cfg.endpointOpts[trunk][t.Attribute]; ok {
			out[i].Value = v
		}
	}
	return appendExtra(out, s.cfg.endpointOpts[trunk]), true
}

// aorConfig returns the attributes of the AOR named aor; s.mu held.
func (s *Sim) aorConfig(aor string) ([]wireConfigTuple, bool) {
	if s.cfg.noAOR[aor] {
		return nil, false
	}
	_, trunk := s.trunks[aor]
	_, set := s.cfg.aorOpts[aor]
	if (!trunk || aor == s.opts.InboundTrunk) && !set {
		return nil, false
	}
	out := make([]wireConfigTuple, len(s.cfg.base.AOR))
	for i, t := range s.cfg.base.AOR {
		out[i] = t
		if v, ok := s.cfg.aorOpts[aor][t.Attribute]; ok {
			out[i].Value = v
		}
	}
	return appendExtra(out, s.cfg.aorOpts[aor]), true
}

// appendExtra adds the options in opts that the list does not have.
func appendExtra(list []wireConfigTuple, opts map[string]string) []wireConfigTuple {
	var extra []string
	for k := range opts {
		if !slices.ContainsFunc(list, func(t wireConfigTuple) bool { return t.Attribute == k }) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		list = append(list, wireConfigTuple{Attribute: k, Value: opts[k]})
	}
	return list
}

func tupleValue(list []wireConfigTuple, attr string) string {
	for _, t := range list {
		if t.Attribute == attr {
			return t.Value
		}
	}
	return ""
}

// endpointState is online when one of the endpoint's AORs has a contact
// that is not unreachable; s.mu held.
func (s *Sim) endpointState(trunk string) string {
	ep, _ := s.endpointConfig(trunk)
	for _, aor := range strings.Split(tupleValue(ep, "aors"), ",") {
		aor = strings.TrimSpace(aor)
		if aor == "" {
			continue
		}
		if cfg, ok := s.aorConfig(aor); ok && tupleValue(cfg, "contact") != "" && !s.cfg.unreachable[aor] {
			return "online"
		}
	}
	return "offline"
}

// ---- REST

func (s *Sim) listModules(r *http.Request, p *params) *reply {
	return okReply(slices.Clone(s.cfg.modules))
}

func (s *Sim) getModule(r *http.Request, p *params) *reply {
	name := r.PathValue("moduleName")
	for _, m := range s.cfg.modules {
		if m.Name == name {
			return okReply(m)
		}
	}
	return errReply(http.StatusNotFound, "Module could not be found in running modules")
}

func (s *Sim) getDynamicConfig(r *http.Request, p *params) *reply {
	class, typ, id := r.PathValue("configClass"), r.PathValue("objectType"), r.PathValue("id")
	if class != "res_pjsip" {
		return errReply(http.StatusNotFound, fmt.Sprintf("configClass '%s' not found", class))
	}
	var list []wireConfigTuple
	var ok bool
	switch typ {
	case "endpoint":
		list, ok = s.endpointConfig(id)
	case "aor":
		list, ok = s.aorConfig(id)
	default:
		return errReply(http.StatusNotFound, fmt.Sprintf("objectType '%s' not found", typ))
	}
	if !ok {
		return errReply(http.StatusNotFound, fmt.Sprintf("Object with id '%s' not found", id))
	}
	return okReply(list)
}

func (s *Sim) listEndpoints(r *http.Request, p *params) *reply {
	tech := r.PathValue("tech")
	if tech != "" && tech != "PJSIP" {
		return errReply(http.StatusNotFound, "No endpoints found")
	}
	out := make([]wireEndpoint, 0, len(s.trunks))
	for _, name := range sortedKeys(s.trunks) {
		out = append(out, s.endpointJSON(name))
	}
	return okReply(out)
}

func (s *Sim) getEndpoint(r *http.Request, p *params) *reply {
	res := r.PathValue("resource")
	if _, ok := s.trunks[res]; !ok || r.PathValue("tech") != "PJSIP" {
		return errReply(http.StatusNotFound, "Endpoint not found")
	}
	return okReply(s.endpointJSON(res))
}

func (s *Sim) endpointJSON(name string) wireEndpoint {
	ids := []string{}
	for _, ch := range s.liveChannels() {
		if strings.HasPrefix(ch.name, "PJSIP/"+name+"-") {
			ids = append(ids, ch.id)
		}
	}
	return wireEndpoint{Technology: "PJSIP", Resource: name, State: s.endpointState(name), ChannelIDs: ids}
}
