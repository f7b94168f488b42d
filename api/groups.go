package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/privnum/privnum/group"
)

// --- groups (AXG) ---

// maxMembersPerRequest bounds the members one request names; the group's
// own limit (group.Config.MaxMembers) bounds its size.
const maxMembersPerRequest = 1000

type createGroupRequest struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

type membersRequest struct {
	Members []string `json:"members"`
}

// members normalises the members of a request, naming a bad one.
func (s *Server) members(in []string, required bool) ([]string, error) {
	if len(in) > maxMembersPerRequest || (required && len(in) == 0) {
		min := 0
		if required {
			min = 1
		}
		return nil, fieldProblem(kInvalidField, "members", fmt.Sprintf("give %d to %d members, got %d", min, maxMembersPerRequest, len(in)))
	}
	out := make([]string, len(in))
	for i, m := range in {
		n, err := s.number(fmt.Sprintf("members[%d]", i), m)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// groupName checks a group name from the path or the body.
func groupName(name string) error {
	if err := group.CheckName(name); err != nil {
		return fieldProblem(kInvalidField, "name", "a group name is 1 to 64 letters, digits, '-' or '_'")
	}
	return nil
}

func groupReply(status int, g group.Group) reply {
	if g.Members == nil {
		g.Members = []string{}
	}
	if g.Bindings == nil {
		g.Bindings = []string{}
	}
	return reply{status: status, body: g}
}

func (s *Server) createGroup(ctx context.Context, rq *request) (reply, error) {
	var in createGroupRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	if err := groupName(in.Name); err != nil {
		return reply{}, err
	}
	members, err := s.members(in.Members, false)
	if err != nil {
		return reply{}, err
	}
	g, err := s.cfg.Groups.Create(ctx, in.Name, members)
	if err != nil {
		return reply{}, err
	}
	r := groupReply(http.StatusCreated, g)
	r.location = "/v1/groups/" + url.PathEscape(g.Name)
	return r, nil
}

func (s *Server) getGroup(ctx context.Context, rq *request) (reply, error) {
	name := rq.PathValue("name")
	if err := groupName(name); err != nil {
		return reply{}, err
	}
	g, err := s.cfg.Groups.Get(ctx, name)
	if err != nil {
		return reply{}, err
	}
	return groupReply(http.StatusOK, g), nil
}

func (s *Server) deleteGroup(ctx context.Context, rq *request) (reply, error) {
	name := rq.PathValue("name")
	if err := groupName(name); err != nil {
		return reply{}, err
	}
	if err := s.cfg.Groups.Delete(ctx, name); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusNoContent}, nil
}

func (s *Server) addGroupMembers(ctx context.Context, rq *request) (reply, error) {
	return s.changeGroup(ctx, rq, s.cfg.Groups.Add)
}

func (s *Server) removeGroupMembers(ctx context.Context, rq *request) (reply, error) {
	return s.changeGroup(ctx, rq, s.cfg.Groups.Remove)
}

func (s *Server) changeGroup(ctx context.Context, rq *request, change func(context.Context, string, []string) (group.Group, error)) (reply, error) {
	name := rq.PathValue("name")
	if err := groupName(name); err != nil {
		return reply{}, err
	}
	var in membersRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	members, err := s.members(in.Members, true)
	if err != nil {
		return reply{}, err
	}
	g, err := change(ctx, name, members)
	if err != nil {
		return reply{}, err
	}
	return groupReply(http.StatusOK, g), nil
}
