package betterauth

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Session is the part of a get-session answer the sidecar acts on. The
// whole answer is kept as JSON for injection.
type Session struct {
	UserID               string
	Email                string
	Name                 string
	SessionID            string
	Token                string
	ActiveOrganizationID string
}

// ParseSession reads a get-session answer: nil for `null` (signed out, a real
// answer), the session for an object with a user id, an error otherwise.
func ParseSession(body []byte) (*Session, error) {
	body = bytes.TrimSpace(body)
	if bytes.Equal(body, []byte("null")) {
		return nil, nil
	}
	var v struct {
		Session *struct {
			ID                   string `json:"id"`
			Token                string `json:"token"`
			ActiveOrganizationID string `json:"activeOrganizationId"`
		} `json:"session"`
		User *struct {
			ID    string `json:"id"`
			Email string `json:"email"`
			Name  string `json:"name"`
		} `json:"user"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("%w: get-session: %v", ErrBackend, err)
	}
	if v.Session == nil || v.User == nil || v.User.ID == "" {
		return nil, fmt.Errorf("%w: get-session answered an object without session and user", ErrBackend)
	}
	return &Session{
		UserID:               v.User.ID,
		Email:                v.User.Email,
		Name:                 v.User.Name,
		SessionID:            v.Session.ID,
		Token:                v.Session.Token,
		ActiveOrganizationID: v.Session.ActiveOrganizationID,
	}, nil
}
