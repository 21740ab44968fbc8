package web

import (
	"html/template"
	"net/http"
	"sync"
)

// The pages of the OpenID provider's interactive steps. internal/oidcop
// declares the interface these methods satisfy; the composition root
// passes the Handler in, since edges do not import each other.

// oidcPage is the data of the OIDC pages.
type oidcPage struct {
	Title    string
	CSRF     string
	AppName  string
	Scopes   []string
	Action   string
	ID       string
	RD       string
	UserCode string
	Error    string
}

var (
	oidcOnce  sync.Once
	oidcPages map[string]*template.Template
	oidcErr   error
)

// scopeTexts say in words what each scope lets an app read.
var scopeTexts = map[string]string{
	"openid":         "your account identifier",
	"profile":        "your username and name",
	"email":          "your email address",
	"groups":         "the groups you belong to",
	"offline_access": "your data while you are away (stays signed in)",
}

func scopeText(s string) string {
	if t, ok := scopeTexts[s]; ok {
		return t
	}
	return s
}

func (h *Handler) oidcTemplate(name string) (*template.Template, error) {
	oidcOnce.Do(func() {
		oidcPages = map[string]*template.Template{}
		for _, n := range []string{"oidc_consent", "oidc_reauth", "oidc_device"} {
			t, err := template.New("").Funcs(template.FuncMap{"scopeText": scopeText}).
				ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html")
			if err != nil {
				oidcErr = err
				return
			}
			oidcPages[n] = t
		}
	})
	return oidcPages[name], oidcErr
}

func (h *Handler) renderOIDC(w http.ResponseWriter, status int, name string, p oidcPage) {
	t, err := h.oidcTemplate(name)
	if err != nil {
		h.o.Logger.Error("parsing page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		h.o.Logger.Error("rendering page", "page", name, "err", err)
	}
}

// RenderConsent shows the consent form; it posts csrf_token, id and
// decision (allow or deny) to action.
func (h *Handler) RenderConsent(w http.ResponseWriter, r *http.Request, appName string, scopes []string, action, id string) {
	h.renderOIDC(w, http.StatusOK, "oidc_consent", oidcPage{
		Title: "Allow " + appName, CSRF: h.o.CSRF.Token(w, r), AppName: appName, Scopes: scopes, Action: action, ID: id,
	})
}

// RenderReauth asks the user to sign in again; agreeing signs them out and
// back in towards rd.
func (h *Handler) RenderReauth(w http.ResponseWriter, r *http.Request, appName, rd string) {
	h.renderOIDC(w, http.StatusOK, "oidc_reauth", oidcPage{Title: "Sign in again", CSRF: h.o.CSRF.Token(w, r), AppName: appName, RD: rd})
}

// RenderDevice shows the device verification form; it posts csrf_token,
// user_code and decision to action.
func (h *Handler) RenderDevice(w http.ResponseWriter, r *http.Request, userCode, action, problem string) {
	status := http.StatusOK
	if problem != "" {
		status = http.StatusBadRequest
	}
	h.renderOIDC(w, status, "oidc_device", oidcPage{Title: "Connect a device", CSRF: h.o.CSRF.Token(w, r), UserCode: userCode, Action: action, Error: problem})
}

// RenderMessage shows a title and a sentence.
func (h *Handler) RenderMessage(w http.ResponseWriter, _ *http.Request, status int, title, message string) {
	h.render(w, status, "message", page{Title: title, Message: message, Link: "/", LinkText: "Back"})
}
