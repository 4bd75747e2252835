package httpapi

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// checkJSONTextByState is checkJSONText as first written, tracking strings
// byte by byte: the reference the vectorized scan must agree with.
func checkJSONTextByState(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(b) {
				return true
			}
			if b[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hex4(b, i+2)
			if !ok {
				return true
			}
			i += 5
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return false
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := rune(0), false
				if i+2 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
					lo, ok = hex4(b, i+3)
				}
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return false
				}
				i += 6
			}
		}
	}
	return true
}

// FuzzCheckJSONText: on every valid JSON text, checkJSONText refuses
// exactly what the byte-by-byte reference refuses.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{
		`{"olx":"\ud800"}`, `{"olx":"\udc00x"}`, `{"olx":"\ud83d\ude00"}`, `{"olx":"\\ud800"}`,
		`{"a":"\"\\\ud800"}`, `["\\","\ud800\ud800"]`, `{"olx":"<p a=\"1\">\n</p>"}`, `"\u00e9\\u"`,
		`{"\ud800":1}`, `{"x":"\ud800\u0041"}`, `{"x":"\ud800\\udc00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		got, want := checkJSONText(b) == nil, checkJSONTextByState(b)
		if got != want {
			t.Fatalf("checkJSONText(%q) accepts: %v, reference: %v", b, got, want)
		}
	})
}
