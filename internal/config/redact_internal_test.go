package config

import (
	"reflect"
	"testing"
	"time"
)

func TestIsSecret(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"password", true},
		{"sftp_password", true},
		{"passphrase", true},
		{"key_passphrase", true},
		{"secret", true},
		{"client_secret", true},
		{"token", true},
		{"api_token", true},
		{"private_key", true},
		// *_env keys name an environment variable holding the secret: the
		// name is not the secret, and operators need to see it.
		{"password_env", false},
		{"passphrase_env", false},
		{"token_env", false},
		{"private_key_env", false},
		{"name", false},
		{"data_dir", false},
		{"busy_timeout", false},
		{"key_file", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := isSecret(tt.key); got != tt.want {
				t.Fatalf("isSecret(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

// Config has no secrets yet; these structs stand in for the sections that
// will (SFTP sites with passwords and key passphrases).
type testSite struct {
	Host          string `mapstructure:"host"`
	Password      string `mapstructure:"password"`
	PasswordEnv   string `mapstructure:"password_env"`
	KeyPassphrase string `mapstructure:"key_passphrase"`
	Token         string `mapstructure:"token"`
	Internal      string `mapstructure:"-"`
	Untagged      string
}

type testConfig struct {
	Name    string              `mapstructure:"name"`
	Timeout time.Duration       `mapstructure:"timeout"`
	Site    testSite            `mapstructure:"site"`
	Sites   map[string]testSite `mapstructure:"sites"`
	Hosts   []testSite          `mapstructure:"hosts"`
	Secret  string              `mapstructure:"secret"`
}

func TestRedact(t *testing.T) {
	in := testConfig{
		Name:    "demo",
		Timeout: 90 * time.Second,
		Site:    testSite{Host: "sftp.example.com", Password: "hunter2", PasswordEnv: "POS_SFTP_PASSWORD", KeyPassphrase: "", Token: "abc", Internal: "x", Untagged: "y"},
		Sites:   map[string]testSite{"store1": {Host: "s1", Password: "p1"}},
		Hosts:   []testSite{{Host: "h1", Token: "t1", PasswordEnv: "E1"}},
		Secret:  "s",
	}
	site := func(host, password, env, passphrase, token string) map[string]any {
		return map[string]any{"host": host, "password": password, "password_env": env, "key_passphrase": passphrase, "token": token}
	}
	want := map[string]any{
		"name":    "demo",
		"timeout": "1m30s",
		// An empty secret stays empty: the operator sees it is not set.
		"site":   site("sftp.example.com", "***", "POS_SFTP_PASSWORD", "", "***"),
		"sites":  map[string]any{"store1": site("s1", "***", "", "", "")},
		"hosts":  []any{site("h1", "", "E1", "", "***")},
		"secret": "***",
	}
	got := redact(reflect.ValueOf(in))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("redact:\n  got  %#v\n  want %#v", got, want)
	}
}

// A map keyed by setting name, such as extra headers or per-partner
// options, hides its secret-looking keys too.
func TestRedactMapKeys(t *testing.T) {
	in := struct {
		Options map[string]string `mapstructure:"options"`
	}{Options: map[string]string{"user": "pos", "password": "hunter2", "password_env": "PW"}}
	want := map[string]any{"options": map[string]any{"user": "pos", "password": "***", "password_env": "PW"}}
	if got := redact(reflect.ValueOf(in)); !reflect.DeepEqual(got, want) {
		t.Fatalf("redact:\n  got  %#v\n  want %#v", got, want)
	}
}
