package betterauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
)

// Family is one kind of read-only query that @better-auth-ui/react runs
// through TanStack Query: the Better Auth endpoint that answers it and the
// query key its hook caches the answer under. Adding a family is adding an
// entry to Families; nothing else knows about individual families.
type Family struct {
	// Name is the Caddyfile/JSON name, e.g. list_sessions.
	Name string
	// Hook is the @better-auth-ui/react hook that reads the key.
	Hook string
	// Method and Endpoint (under the base path) of the Better Auth call.
	Method   string
	Endpoint string
	// Key is the query key after ["auth","user",<user id>] and before the
	// params; a family with a nil Key is the session itself, ["auth","getSession"].
	Key []string
	// BodyParams sends the params as the JSON body instead of the query string.
	BodyParams bool
	// Organization marks data that an organization change invalidates.
	Organization bool
	// OrgScoped: the client hook scopes the query to an organization,
	// `organizationId: query.organizationId ?? activeOrganization?.id`, so
	// the sidecar fills organizationId in the same way (ScopeParams).
	OrgScoped bool
	// KeyFields, when set, are the only params the client hook passes on
	// (useHasPermission passes organizationId and permissions).
	KeyFields []string
	// NullWhen names params that, when JSON null, make the client hook's
	// data null without a request (useActiveOrganization with a null slug).
	NullWhen []string
}

// SessionFamily is the session query, resolved for every request.
var SessionFamily = &Family{Name: "session", Hook: "useSession", Method: "GET", Endpoint: "/get-session"}

// Families lists every query family by name. The keys are those of
// @better-auth-ui/core 1.7.23 (src/lib/auth-query-keys.ts and the plugins'
// query keys); testdata/parity holds the golden proof.
var Families = map[string]*Family{}

func init() {
	for _, f := range []*Family{
		SessionFamily,
		{Name: "list_accounts", Hook: "useListAccounts", Method: "GET", Endpoint: "/list-accounts", Key: []string{"listAccounts"}},
		{Name: "account_info", Hook: "useAccountInfo", Method: "GET", Endpoint: "/account-info", Key: []string{"accountInfo"}},
		{Name: "list_sessions", Hook: "useListSessions", Method: "GET", Endpoint: "/list-sessions", Key: []string{"listSessions"}},
		{Name: "list_device_sessions", Hook: "useListDeviceSessions", Method: "GET", Endpoint: "/multi-session/list-device-sessions", Key: []string{"multiSession", "list"}},
		{Name: "list_passkeys", Hook: "useListPasskeys", Method: "GET", Endpoint: "/passkey/list-user-passkeys", Key: []string{"passkey", "list"}},
		{Name: "list_api_keys", Hook: "useListApiKeys", Method: "GET", Endpoint: "/api-key/list", Key: []string{"apiKey", "list"}},
		{Name: "active_organization", Hook: "useActiveOrganization", Method: "GET", Endpoint: "/organization/get-full-organization", Key: []string{"organization", "active"}, Organization: true, NullWhen: []string{"organizationSlug"}},
		{Name: "full_organization", Hook: "useFullOrganization", Method: "GET", Endpoint: "/organization/get-full-organization", Key: []string{"organization", "fullDetails"}, Organization: true},
		{Name: "list_organizations", Hook: "useListOrganizations", Method: "GET", Endpoint: "/organization/list", Key: []string{"organization", "list"}, Organization: true},
		{Name: "list_organization_members", Hook: "useListOrganizationMembers", Method: "GET", Endpoint: "/organization/list-members", Key: []string{"organization", "members", "list"}, Organization: true, OrgScoped: true},
		{Name: "list_organization_invitations", Hook: "useListOrganizationInvitations", Method: "GET", Endpoint: "/organization/list-invitations", Key: []string{"organization", "invitations", "list"}, Organization: true, OrgScoped: true},
		{Name: "list_user_invitations", Hook: "useListUserInvitations", Method: "GET", Endpoint: "/organization/list-user-invitations", Key: []string{"organization", "userInvitations", "list"}, Organization: true},
		{Name: "has_permission", Hook: "useHasPermission", Method: "POST", Endpoint: "/organization/has-permission", Key: []string{"organization", "permissions", "has"}, BodyParams: true, Organization: true, OrgScoped: true, KeyFields: []string{"organizationId", "permissions"}},
	} {
		Families[f.Name] = f
	}
}

// FamilyNames lists the registered names, sorted.
func FamilyNames() []string {
	names := make([]string, 0, len(Families))
	for n := range Families {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ScopeParams gives params (a JSON object or empty) the shape the client
// hook gives them: organizationId filled from activeOrgID when the family
// is organization-scoped and params name none, and only KeyFields kept.
// ok is false when the client would not run the query: a scoped family
// with no organization to scope to.
func (f *Family) ScopeParams(params []byte, activeOrgID string) (out []byte, ok bool, err error) {
	if !f.OrgScoped && f.KeyFields == nil {
		return params, true, nil
	}
	obj := map[string]json.RawMessage{}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &obj); err != nil {
			return nil, false, fmt.Errorf("%s params: %v", f.Name, err)
		}
	}
	if f.OrgScoped {
		if id, found := obj["organizationId"]; !found || isNullish(id) {
			if activeOrgID == "" {
				return nil, false, nil
			}
			obj["organizationId"], _ = json.Marshal(activeOrgID)
		}
	}
	if f.KeyFields != nil {
		kept := map[string]json.RawMessage{}
		for _, k := range f.KeyFields {
			if v, found := obj[k]; found {
				kept[k] = v
			}
		}
		obj = kept
	}
	out, err = json.Marshal(obj)
	return out, err == nil, err
}

// isNullish is JavaScript's `a ?? b` test on a JSON value: only null
// (undefined has no JSON form) gives way.
func isNullish(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }

// AnswersNull reports params for which the client's data is null without
// any request (see NullWhen).
func (f *Family) AnswersNull(params []byte) bool {
	if len(f.NullWhen) == 0 || len(params) == 0 {
		return false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(params, &obj) != nil {
		return false
	}
	for _, k := range f.NullWhen {
		if v, ok := obj[k]; ok && isNullish(v) {
			return true
		}
	}
	return false
}

// KeyJSON is the query key as JSON text: ["auth","getSession"] for the
// session, else ["auth","user",uid,...Key,params] with params (a JSON
// object, already validated) or null.
func (f *Family) KeyJSON(uid string, params []byte) []byte {
	if f.Key == nil {
		return []byte(`["auth","getSession"]`)
	}
	var b bytes.Buffer
	b.WriteString(`["auth","user",`)
	u, _ := json.Marshal(uid)
	b.Write(u)
	for _, k := range f.Key {
		b.WriteByte(',')
		b.WriteString(strconv.Quote(k))
	}
	b.WriteByte(',')
	if len(params) == 0 {
		b.WriteString("null")
	} else {
		b.Write(params)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// Call builds the Better Auth call for params (a JSON object or empty).
// Query-string params are sent the way Better Auth's client sends a query
// object: strings as they are, other scalars as their JSON text, nested
// values as JSON, nulls left out.
func (f *Family) Call(params []byte) (Call, error) {
	c := Call{Method: f.Method, Endpoint: f.Endpoint}
	if f.BodyParams {
		if len(params) == 0 {
			params = []byte("{}")
		}
		c.Body = params
		return c, nil
	}
	if len(params) == 0 {
		return c, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(params, &obj); err != nil {
		return c, fmt.Errorf("%s params: %v", f.Name, err)
	}
	c.Query = url.Values{}
	for k, raw := range obj {
		raw = bytes.TrimSpace(raw)
		switch {
		case bytes.Equal(raw, []byte("null")):
		case len(raw) > 0 && raw[0] == '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return c, fmt.Errorf("%s params: %v", f.Name, err)
			}
			c.Query.Set(k, s)
		default:
			c.Query.Set(k, string(raw))
		}
	}
	return c, nil
}
