package inquiry

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// A page cursor is opaque text: base64url (no padding) of a version byte,
// the fingerprint of the search it belongs to (8 bytes), the sort key of
// the last customer of its page as a JSON array of strings, and a
// checksum (the first 8 bytes of the SHA-256 of what precedes it). The
// checksum tells a damaged or made-up cursor from one of another search;
// it is no secret: a cursor only says where a page ends.
const cursorVersion = 1

// fingerprint identifies a search by what selects its rows (field, value
// and first name as compared, exact or not); the page size may change
// from page to page.
func fingerprint(field, value, first string, exact bool) [8]byte {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%t", field, value, first, exact))
	var f [8]byte
	copy(f[:], sum[:])
	return f
}

func encodeCursor(search [8]byte, key []string) string {
	k, err := json.Marshal(key)
	if err != nil {
		panic(err) // a slice of strings always encodes
	}
	b := append([]byte{cursorVersion}, search[:]...)
	b = append(b, k...)
	sum := sha256.Sum256(b)
	b = append(b, sum[:8]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the key of cursor s, which must belong to search
// and hold n key values.
func decodeCursor(s string, search [8]byte, n int) ([]string, error) {
	shown := s
	if len(shown) > 60 {
		shown = shown[:60] + "..."
	}
	bad := cursorErr(input("after"), fmt.Sprintf(" %q: not a page cursor of posbridge (damaged or made up); give the one the previous page printed", shown))
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1+8+8 || b[0] != cursorVersion {
		return nil, bad
	}
	body, sum := b[:len(b)-8], b[len(b)-8:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:8]) {
		return nil, bad
	}
	var key []string
	if err := json.Unmarshal(body[9:], &key); err != nil {
		return nil, bad
	}
	if !bytes.Equal(body[1:9], search[:]) {
		return nil, cursorErr(input("after"), " belongs to another search: a page cursor continues the search that printed it (same search field, value, first name and exactness)")
	}
	if len(key) != n {
		return nil, bad
	}
	return key, nil
}
