package transfer

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestRecordKey(t *testing.T) {
	for _, c := range []struct{ in, key, err string }{
		{`{"messageId": 1001, "eventType": "X"}`, "1001", ""},
		{`{"eventType": "X", "messageId": "m-7"}`, "m-7", ""},
		{`{"MessageID": 5}`, "5", ""},
		{`{"messageId": 1, "messageid": 2}`, "2", ""},
		{`{"message\u0049d": 9}`, "9", ""},
		{`{"messageId": null, "onlineReferenceNo": "A1"}`, "", ""},
		{`{"onlineReferenceNo": "A1"}`, "A1", ""},
		{`{"salesOrder": {"OnlineReferenceNo": 22, "orderItems": [{"onlineReferenceNo": 3}]}}`, "22", ""},
		{`{"salesOrder": null, "onlineReferenceNo": 4}`, "4", ""},
		{`{"salesOrder": {"status": "pending"}, "onlineReferenceNo": 4}`, "", ""},
		{`{"a": {"messageId": 1}, "b": [1, "messageId", {"x": "}"}], "c": "\"messageId\": 2"}`, "", ""},
		{` { "messageId" : 1.5e3 } `, "1.5e3", ""},
		{`[{"messageId": 1}]`, "", ""},
		{`"messageId"`, "", ""},
		{`{}`, "", ""},
		{`{"messageId": ""}`, "", "empty messageId"},
		{`{"messageId": true}`, "", "messageId true: want a number or a string"},
		{`{"messageId": {"a": 1}}`, "", `messageId {"a": 1}: want a number or a string`},
	} {
		key, err := recordKey(json.RawMessage(c.in))
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if key != c.key || msg != c.err {
			t.Errorf("%s: key %q, error %q; want %q, %q", c.in, key, msg, c.key, c.err)
		}
	}
}

// members reads an object's members as encoding/json does.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{"messageId": 1, "a": [1, {"b": "c\"}"}], "d": null}`, `{"x\u00e9": "\\", "y": -0.5e+3, "z": true}`, `[1]`, `{}`, `{"a":{"a":{}}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		// Names of invalid UTF-8 come out of encoding/json mended; no
		// key posbridge looks for is one.
		if !json.Valid([]byte(in)) || !utf8.ValidString(in) {
			return
		}
		var want map[string]json.RawMessage
		if json.Unmarshal([]byte(in), &want) != nil || want == nil {
			members([]byte(in), func(name string, v []byte) { t.Fatalf("%s: a member %q of what is not an object", in, name) })
			return
		}
		got := map[string]json.RawMessage{}
		members([]byte(in), func(name string, v []byte) { got[name] = v })
		if len(got) != len(want) {
			t.Fatalf("%s: %d members, want %d", in, len(got), len(want))
		}
		for k, w := range want {
			var a, b bytes.Buffer
			json.Compact(&a, w)
			if err := json.Compact(&b, got[k]); err != nil || a.String() != b.String() {
				t.Fatalf("%s: member %q is %q, want %q", in, k, got[k], w)
			}
		}
	})
}
