package httpapi

import (
	"net/http"
	"net/url"
	"strings"
)

// wantsRedirect reports whether a GET asked, with `Prefer: redirect`, to be
// sent to the blob store's own URL of the bytes (API.md, "Redirects on
// request"). HEAD never redirects: it answers from the index.
func wantsRedirect(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	for _, v := range r.Header.Values("Prefer") {
		for _, pref := range strings.Split(v, ",") {
			token, _, _ := strings.Cut(pref, ";")
			if strings.EqualFold(strings.TrimSpace(token), "redirect") {
				return true
			}
		}
	}
	return false
}

// redirect answers 307 to u, a presigned URL of the bytes. The answer is
// not cached: the URL expires, and the same path without the preference
// serves the bytes themselves.
func redirect(w http.ResponseWriter, u *url.URL) {
	h := w.Header()
	h.Set("Location", u.String())
	h.Set("Preference-Applied", "redirect")
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Prefer")
	w.WriteHeader(http.StatusTemporaryRedirect)
}
