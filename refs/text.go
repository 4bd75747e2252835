package refs

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/blockstore/blockstore/index"
)

// checkText refuses text that not every index engine stores alike: invalid
// UTF-8 and NUL characters (PostgreSQL's text type refuses both, Pebble
// would keep them). Names, collection fields and media types go through it;
// OLX does not: it is bytes in a blob.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s holds a NUL character", ErrInvalid, field)
	}
	return nil
}

// checkTexts checks pairs of field names and values; nil values are absent.
func checkTexts(pairs ...any) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		field := pairs[i].(string)
		switch v := pairs[i+1].(type) {
		case string:
			if err := checkText(field, v); err != nil {
				return err
			}
		case *string:
			if v != nil {
				if err := checkText(field, *v); err != nil {
					return err
				}
			}
		default:
			panic(fmt.Sprintf("refs: checkTexts: %T", v))
		}
	}
	return nil
}

// checkFilter checks the name filter of a list.
func checkFilter(opt index.ListOptions) error {
	if opt.HasName {
		return checkText("name", opt.Name)
	}
	return nil
}
