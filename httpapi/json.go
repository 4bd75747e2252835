package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	json "github.com/go-json-experiment/json/v1"

	"github.com/blockstore/blockstore/cas"
)

// encodeJSON encodes v as one line of JSON. HTML characters are not
// escaped: OLX is full of them.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("httpapi: encode response: %w", err)
	}
	return buf.Bytes(), nil
}

// writeBody sends a JSON body with its length; HEAD gets the headers only.
func writeBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// writeJSON encodes v and sends it.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) error {
	body, err := encodeJSON(v)
	if err != nil {
		return err
	}
	writeBody(w, r, status, body)
	return nil
}

// decodeJSON reads a JSON object into v: Content-Type application/json (or
// none) unless the body is empty, at most max bytes (413 beyond),
// valid UTF-8 with no lone surrogate escapes (a string's bytes are stored
// exactly), unknown fields ignored, types strict, nothing after the object.
// An empty body is an error unless allowEmpty. It returns the hash of the
// body, for the request's fingerprint.
func decodeJSON(r *http.Request, max int64, allowEmpty bool, v any) (cas.Hash, error) {
	if r.ContentLength > max {
		return cas.Hash{}, tooLarge("JSON body of %d bytes is over the limit of %d", r.ContentLength, max)
	}
	b, err := readBody(r, max)
	if err != nil {
		return cas.Hash{}, fmt.Errorf("httpapi: read request body: %w", err)
	}
	if int64(len(b)) > max {
		return cas.Hash{}, tooLarge("JSON body is over the limit of %d bytes", max)
	}
	sum := cas.Sum(b)
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 {
		if allowEmpty {
			return sum, nil
		}
		return cas.Hash{}, badRequest("the request body must be a JSON object")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
			return cas.Hash{}, badRequest("Content-Type must be application/json, not %q", ct)
		}
	}
	if trimmed[0] != '{' {
		return cas.Hash{}, badRequest("the request body must be a JSON object")
	}
	if err := checkJSONText(b); err != nil {
		return cas.Hash{}, err
	}
	// Unmarshal refuses anything but white space after the object.
	if err := json.Unmarshal(b, v); err != nil {
		return cas.Hash{}, badRequest("%s", describeJSONError(err))
	}
	return sum, nil
}

// readBody reads at most max+1 bytes of the request body, into one buffer
// of the announced length when there is one.
func readBody(r *http.Request, max int64) ([]byte, error) {
	cl := r.ContentLength
	if cl <= 0 || cl > max {
		return io.ReadAll(io.LimitReader(r.Body, max+1))
	}
	b := make([]byte, cl+1) // +1: a body longer than announced shows
	n, err := io.ReadFull(r.Body, b)
	switch {
	case err == nil: // longer than announced (net/http stops at cl)
		rest, err := io.ReadAll(io.LimitReader(r.Body, max-cl))
		return append(b, rest...), err
	case errors.Is(err, io.ErrUnexpectedEOF) && int64(n) == cl:
		return b[:n], nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("body ended after %d of the %d bytes announced: %w", n, cl, err)
	}
	return nil, err
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, not a JSON %s", te.Field, jsonTypeName(te.Type.String()), te.Value)
		}
		return fmt.Sprintf("expected %s, not a JSON %s", jsonTypeName(te.Type.String()), te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of the body"
	}
	return "malformed JSON: " + err.Error()
}

func jsonTypeName(goType string) string {
	t := strings.TrimLeft(goType, "*")
	switch {
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	}
	return "an object"
}

// checkJSONText refuses bytes that encoding/json would silently change:
// invalid UTF-8 and \u escapes of lone UTF-16 surrogates (both become
// U+FFFD), so that a string's bytes are stored exactly as sent.
func checkJSONText(b []byte) error {
	if !utf8.Valid(b) {
		return badRequest("the request body is not valid UTF-8")
	}
	// In valid JSON a backslash only starts an escape inside a string, and
	// escapes do not overlap: jumping from backslash to backslash (a
	// vectorized search) sees every \u escape. Invalid JSON is left to the
	// decoder.
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\\')
		if j < 0 || i+j+1 >= len(b) {
			return nil
		}
		i += j
		if b[i+1] != 'u' {
			i += 2
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			return nil
		}
		i += 6
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return badRequest("the request body holds a lone UTF-16 surrogate (\\u%04x)", r)
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := rune(0), false
			if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
				lo, ok = hex4(b, i+2)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return badRequest("the request body holds a lone UTF-16 surrogate (\\u%04x)", r)
			}
			i += 6
		}
	}
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}
