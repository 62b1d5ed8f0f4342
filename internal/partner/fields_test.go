package partner

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckFields(t *testing.T) {
	limit := func(key string) int {
		switch key {
		case "customercity":
			return 5
		case "note":
			return -1
		}
		return 0
	}
	for _, tc := range []struct {
		name, raw string
		want      string // "" : passes
		key       string
	}{
		{"good", `{"a":"x","b":[1,"y",{"c":null}],"customerCity":" Pune "}`, "", ""},
		{"NUL", `{"salesOrder":{"orderItems":[{"itemName":"a\u0000b"}]}}`, "salesOrder.orderItems[0].itemName contains a NUL byte", "itemName"},
		{"escape", `{"x":"\u001b[31m"}`, "x contains the control character U+001B", "x"},
		{"too long", `{"customerCity":"Portland"}`, "customerCity is 8 characters long, at most 5 allowed", "customerCity"},
		{"default limit", `{"n":"` + strings.Repeat("é", 13) + `"}`, "n is 13 characters long, at most 12 allowed", "n"},
		{"long number", `{"n":` + strings.Repeat("9", 13) + `}`, "n is 13 characters long, at most 12 allowed", "n"},
		{"array element", `{"tags":["ok","a\u0000"]}`, "tags[1] contains a NUL byte", "tags"},
		{"invalid UTF-8 value", "{\"a\":\"ok\",\"l\":[{\"b\":\"x\xff\"}]}", "l[0].b is not valid UTF-8", "b"},
		{"invalid UTF-8 key", "{\"a\":{\"k\xc3\":1}}", "a has a key that is not valid UTF-8", "k\ufffd"},
		{"not kept", `{"note":"a\u0000b","customerCity":"Pune"}`, "", ""},
		{"not kept, invalid UTF-8", "{\"note\":\"\xff\"}", "note is not valid UTF-8", "note"},
		{"a long key is not kept", `{"` + strings.Repeat("k", 20) + `":1}`, "", ""},
		{"top-level string", `"a\u0000"`, "the record contains a NUL byte", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckFields([]byte(tc.raw), 12, limit)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want none", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a FieldError %q", err, tc.want)
			}
			if fe.Error() != tc.want || fe.Key != tc.key {
				t.Fatalf("got %q (key %q), want %q (key %q)", fe.Error(), fe.Key, tc.want, tc.key)
			}
		})
	}
	if err := CheckFields([]byte("{\"a\":1}\xff"), 10, nil); err == nil {
		t.Fatal("invalid UTF-8 outside any value passed")
	}
}

func TestKept(t *testing.T) {
	type inner struct {
		Code string `json:"channelSkuCode"`
	}
	limit := Kept(struct {
		A     string  `json:"returnOrderCode"`
		Items []inner `json:"orderItems,omitempty"`
		Skip  string  `json:"-"`
		P     *struct {
			N int `json:"Nested"`
		} `json:"p"`
	}{})
	for key, want := range map[string]int{"returnordercode": 0, "orderitems": 0, "channelskucode": 0, "nested": 0, "p": 0, "-": -1, "skip": -1, "other": -1} {
		if got := limit(key); got != want {
			t.Errorf("%s: %d, want %d", key, got, want)
		}
	}
}
