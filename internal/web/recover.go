package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/gatehouse-sso/gatehouse/internal/httpx"
	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// RecoveryRedeemer uses up a one-time emergency link.
type RecoveryRedeemer interface {
	Redeem(ctx context.Context, secret string) (model.RecoveryToken, error)
}

var errRecoveryInvalid = &httpx.PublicError{Status: http.StatusGone, Message: "This recovery link is invalid, has been used, or has expired. Ask an operator for a new one."}

// recoverPage asks for a click before the link is used: mail scanners and
// link previews fetch URLs with GET and must not burn a one-time link.
func (h *Handler) recoverPage(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	if token == "" {
		return errRecoveryInvalid
	}
	h.render(w, http.StatusOK, "recover", page{Title: "Emergency sign-in", CSRF: h.o.CSRF.Token(w, r), RD: token})
	return nil
}

func (h *Handler) recoverSubmit(w http.ResponseWriter, r *http.Request) error {
	if !h.o.CSRF.Verify(r) {
		return &httpx.PublicError{Status: http.StatusForbidden, Message: "The form expired. Go back, reload the page and try again."}
	}
	ip := h.o.IPs.ClientIP(r).String()
	t, err := h.o.Recovery.Redeem(r.Context(), r.PostFormValue("token"))
	if err != nil {
		h.o.Audit.Record(r.Context(), model.AuditEvent{Action: "recovery.used", ClientIP: ip, Outcome: "failure"})
		if errors.Is(err, context.Canceled) {
			return err
		}
		return errRecoveryInvalid
	}
	u, err := h.o.Directory.GetUser(r.Context(), t.UserID)
	if err != nil {
		return err
	}
	if u.Disabled {
		h.o.Audit.Record(r.Context(), model.AuditEvent{Action: "recovery.used", Actor: u.Username, ActorID: u.ID, ClientIP: ip, Outcome: "failure", Detail: map[string]string{"reason": "user disabled"}})
		return &httpx.PublicError{Status: http.StatusForbidden, Message: "This account is disabled. Enable it first with `gatehouse user enable`."}
	}
	if h.o.Unlock != nil {
		if err := h.o.Unlock(r.Context(), u.Username); err != nil {
			return err
		}
	}
	// An operator-issued link stands in for every factor the user lost.
	if err := h.startSession(w, r, u, model.LevelTwoFactor, ip, "recovery.used"); err != nil {
		return err
	}
	http.Redirect(w, r, "/", http.StatusFound)
	return nil
}
