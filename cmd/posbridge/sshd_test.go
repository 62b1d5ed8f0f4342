package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// realSSHD starts the OpenSSH sshd on a free loopback port, serving sftp
// from siteDir to the current user with a generated key. It returns the
// port, the user's key file and a known_hosts file with the server's
// ed25519 key only (the server also offers RSA and ECDSA keys). In CI
// (CI=true) a missing sshd or a non-root run fails the test; elsewhere it
// skips.
func realSSHD(t *testing.T, dir, siteDir string) (port int, keyFile, knownHosts string) {
	t.Helper()
	if why := sshdMissing(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI runs this test: .ci/run installs openssh-server and runs as root)", why)
		}
		t.Skip(why)
	}
	s, err := startSSHD(dir, siteDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.log.String())
		}
	})
	return s.port, s.keyFile, s.knownHosts
}

const sshdPath = "/usr/sbin/sshd"

// sshdMissing says why the real sshd cannot run here, or "" when it can.
func sshdMissing() string {
	if _, err := os.Stat(sshdPath); err != nil {
		return fmt.Sprintf("no OpenSSH server: %v", err)
	}
	for _, tool := range []string{"ssh-keygen", "sftp"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("no %s: %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		return "sshd needs root"
	}
	return ""
}

// sshdServer is a running OpenSSH sshd; its files are in one folder.
type sshdServer struct {
	port                      int
	user, keyFile, knownHosts string
	cmd                       *exec.Cmd
	log                       bytes.Buffer
}

func (s *sshdServer) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// startSSHD starts sshd with its files in dir. Its sftp sessions start in
// siteDir, without a chroot: absolute paths are those of this machine.
func startSSHD(dir, siteDir string) (*sshdServer, error) {
	keygen := func(typ, file string) error {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", typ, "-N", "", "-C", "test", "-f", file).CombinedOutput(); err != nil {
			return fmt.Errorf("ssh-keygen %s: %v\n%s", typ, err, out)
		}
		return nil
	}
	for _, typ := range []string{"ed25519", "rsa", "ecdsa"} {
		if err := keygen(typ, filepath.Join(dir, "host_"+typ)); err != nil {
			return nil, err
		}
	}
	s := &sshdServer{keyFile: filepath.Join(dir, "id_user")}
	if err := keygen("ed25519", s.keyFile); err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(s.keyFile + ".pub")
	if err != nil {
		return nil, err
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, pub, 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	s.user = u.Username
	conf := filepath.Join(dir, "sshd_config")
	text := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %[2]s/host_ed25519
HostKey %[2]s/host_rsa
HostKey %[2]s/host_ecdsa
PidFile %[2]s/sshd.pid
AuthorizedKeysFile %[3]s
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers %[4]s
Subsystem sftp internal-sftp -d %[5]s
`, s.port, dir, authKeys, s.user, siteDir)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	os.MkdirAll("/run/sshd", 0o755) // privilege separation folder
	s.cmd = exec.Command(sshdPath, "-D", "-e", "-f", conf)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sshd: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("sshd does not listen on %d: %v\n%s", s.port, err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_ed25519.pub"))
	if err != nil {
		s.stop()
		return nil, err
	}
	f := strings.Fields(string(hostPub))
	s.knownHosts = filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.port, f[0], f[1])
	if err := os.WriteFile(s.knownHosts, []byte(line), 0o600); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// cmdSSHD starts the real OpenSSH sshd for a script, its sftp sessions
// starting in DIR (the login folder; no chroot):
//
//	sshd start DIR
//
// It sets SSHD_PORT, SSHD_USER, SSHD_KEY and SSHD_KNOWN_HOSTS, and
// SSHD_CONFIG, an ssh_config file in which the host "sshd" is this server
// for the OpenSSH client: exec sftp -F $SSHD_CONFIG -b BATCH sshd. Scripts
// guard it with [!sshd] skip.
func cmdSSHD(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 || args[0] != "start" {
		ts.Fatalf("usage: sshd start DIR")
	}
	dir := ts.MkAbs(".sshd")
	ts.Check(os.MkdirAll(dir, 0o700))
	s, err := startSSHD(dir, ts.MkAbs(args[1]))
	ts.Check(err)
	ts.Defer(s.stop)
	clientConf := filepath.Join(dir, "ssh_config")
	ts.Check(os.WriteFile(clientConf, []byte(fmt.Sprintf(`Host sshd
  HostName 127.0.0.1
  Port %d
  User %s
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
  BatchMode yes
`, s.port, s.user, s.keyFile, s.knownHosts)), 0o600))
	ts.Setenv("SSHD_PORT", strconv.Itoa(s.port))
	ts.Setenv("SSHD_USER", s.user)
	ts.Setenv("SSHD_KEY", s.keyFile)
	ts.Setenv("SSHD_KNOWN_HOSTS", s.knownHosts)
	ts.Setenv("SSHD_CONFIG", clientConf)
}

// sshdCondition is the script condition [sshd]: the real sshd can run. In
// CI it must: there a missing one fails the script instead of skipping it.
func sshdCondition() (bool, error) {
	why := sshdMissing()
	if why != "" && os.Getenv("CI") == "true" {
		return false, fmt.Errorf("%s (CI runs the sshd stories: .ci/run installs openssh-server and runs as root)", why)
	}
	return why == "", nil
}

// cuttingProxy forwards loopback connections to target and cuts each one
// after limit bytes (both ways together); it returns its port.
func cuttingProxy(t *testing.T, target string, limit int64) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			var n atomic.Int64
			pipe := func(dst, src net.Conn) {
				defer dst.Close()
				defer src.Close()
				buf := make([]byte, 4096)
				for {
					k, err := src.Read(buf)
					if k > 0 {
						if n.Add(int64(k)) > limit {
							return
						}
						if _, err := dst.Write(buf[:k]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}
			go pipe(c, s)
			go pipe(s, c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Push and pull with the posbridge binary against the real sshd, checked
// with the OpenSSH sftp client both ways.
func TestRealSSHD(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	for _, d := range []string{"inbox", "outbox", "archive"} {
		if err := os.MkdirAll(filepath.Join(site, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port, key, kh := realSSHD(t, dir, site)
	u, _ := user.Current()
	// A proxy to sshd that cuts each connection after 400 KB, and a
	// known_hosts line for its port.
	cut := cuttingProxy(t, fmt.Sprintf("127.0.0.1:%d", port), 400<<10)
	khText, _ := os.ReadFile(kh)
	khLine := strings.Replace(string(khText), fmt.Sprintf("]:%d ", port), fmt.Sprintf("]:%d ", cut), 1)
	os.WriteFile(kh, append(khText, khLine...), 0o600)
	cfgFile := filepath.Join(dir, "posbridge.yaml")
	cfg := fmt.Sprintf(`sites:
  real:
    type: sftp
    host: 127.0.0.1
    port: %d
    user: %s
    key_file: %s
    known_hosts: %s
    connect_timeout: 5s
    idle_timeout: 10s
    folders: {inbox: inbox, outbox: outbox, archive: archive}
  down:
    type: sftp
    host: 127.0.0.1
    port: %d
    user: %s
    key_file: %s
    known_hosts: %s
    connect_timeout: 2s
    folders: {inbox: inbox}
  cut:
    type: sftp
    host: 127.0.0.1
    port: %d
    user: %s
    key_file: %s
    known_hosts: %s
    # One retry: the proxy cuts every connection, so the run retries once
    # (1 s) and then exits 75.
    retries: 1
    folders: {inbox: inbox, outbox: outbox}
`, port, u.Username, key, kh, closedPort(t), u.Username, key, kh, cut, u.Username, key, kh)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env, _ := stateEnv(t, dir, "SSH_AUTH_SOCK=")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("posbridge", append([]string{"--config", cfgFile}, args...)...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("posbridge %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	sftpBatch := func(batch string) {
		t.Helper()
		cmd := exec.Command("sftp", "-b", "-", "-i", key, "-P", fmt.Sprint(port),
			"-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
			"-o", "IdentitiesOnly=yes", u.Username+"@127.0.0.1")
		cmd.Stdin, cmd.Dir = strings.NewReader(batch), dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sftp %q: %v\n%s", batch, err, out)
		}
	}
	run("init")
	if out := run("sites", "test", "real"); !strings.Contains(out, "host key verified") || strings.Contains(out, "FAILED") {
		t.Errorf("sites test:\n%s", out)
	} else {
		t.Logf("sites test:\n%s", out)
	}

	// posbridge pushes, sftp reads it back.
	outDir := filepath.Join(dir, "out")
	os.MkdirAll(outDir, 0o755)
	body := strings.Repeat("<item/>\n", 50000)
	os.WriteFile(filepath.Join(outDir, "items.xml"), []byte(body), 0o600)
	run("push", "--site", "real", "--from", outDir, "--to", "inbox")
	sftpBatch("get inbox/items.xml back.xml\n")
	if b, _ := os.ReadFile(filepath.Join(dir, "back.xml")); string(b) != body {
		t.Errorf("file read back with sftp: %d bytes, want %d", len(b), len(body))
	}
	// Pushing the same name again fails without --overwrite (exit 1).
	os.WriteFile(filepath.Join(outDir, "items.xml"), []byte("<new/>"), 0o600)
	cmd := exec.Command("posbridge", "--config", cfgFile, "push", "--site", "real", "--from", outDir, "--to", "inbox")
	cmd.Env, cmd.Dir = env, dir
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "exists on the site") {
		t.Errorf("push over an existing file: %v\n%s", err, out)
	}
	run("push", "--site", "real", "--from", outDir, "--to", "inbox", "--overwrite")
	if b, _ := os.ReadFile(filepath.Join(site, "inbox", "items.xml")); string(b) != "<new/>" {
		t.Errorf("after --overwrite: %q", b)
	}

	// A site that cannot be reached: exit 75, the file stays.
	os.WriteFile(filepath.Join(outDir, "later.xml"), []byte("<later/>"), 0o600)
	cmd = exec.Command("posbridge", "--config", cfgFile, "push", "--site", "down", filepath.Join(outDir, "later.xml"))
	cmd.Env, cmd.Dir = env, dir
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 75 || !strings.Contains(string(out), "site unreachable") {
		t.Errorf("push to a closed port: %v, want exit 75\n%s", err, out)
	}
	t.Logf("push to a closed port:\n%s", out)
	if _, err := os.Stat(filepath.Join(outDir, "later.xml")); err != nil {
		t.Errorf("later.xml: %v", err)
	}

	// A connection cut in the middle of a push and of a pull: exit 75,
	// nothing under its final name on either side; the next run over a
	// good connection finishes.
	big := strings.Repeat("0123456789abcdef", 256<<10) // 4 MiB
	os.WriteFile(filepath.Join(outDir, "big.xml"), []byte(big), 0o600)
	os.WriteFile(filepath.Join(site, "outbox", "big2.xml"), []byte(big), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(site, "outbox", "big2.xml"), old, old)
	in := filepath.Join(dir, "in")
	os.MkdirAll(in, 0o755)
	for _, args := range [][]string{
		{"push", "--site", "cut", filepath.Join(outDir, "big.xml")},
		{"pull", "--site", "cut", "--from", "outbox", "--to", in, "--min-age", "0s", "--stable-wait", "0s", "--after", "delete"},
	} {
		cmd := exec.Command("posbridge", append([]string{"--config", cfgFile}, args...)...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 75 {
			t.Errorf("%s through a cut connection: %v, want exit 75\n%s", args[0], err, out)
		}
		t.Logf("%s through a cut connection:\n%s", args[0], out)
	}
	for _, p := range []string{filepath.Join(site, "inbox", "big.xml"), filepath.Join(in, "big2.xml")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after the cut: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(site, "outbox", "big2.xml")); err != nil {
		t.Errorf("remote big2.xml gone after the cut pull: %v", err)
	}
	run("push", "--site", "real", filepath.Join(outDir, "big.xml"))
	run("pull", "--site", "real", "--from", "outbox", "--to", in, "--min-age", "0s", "--stable-wait", "0s", "--after", "delete", "--pattern", "big*")
	if b, _ := os.ReadFile(filepath.Join(site, "inbox", "big.xml")); string(b) != big {
		t.Errorf("pushed big.xml: %d bytes", len(b))
	}
	if b, _ := os.ReadFile(filepath.Join(in, "big2.xml")); string(b) != big {
		t.Errorf("pulled big2.xml: %d bytes", len(b))
	}
	for _, p := range []string{filepath.Join(site, "inbox", ".big.xml.tmp"), filepath.Join(site, "outbox", "big2.xml")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}

	// sftp puts, posbridge pulls and archives.
	os.WriteFile(filepath.Join(dir, "put.xml"), []byte("<put/>"), 0o600)
	sftpBatch("put put.xml outbox/put.xml\n")
	time.Sleep(1100 * time.Millisecond) // mtimes have whole seconds
	run("pull", "--site", "real", "--from", "outbox", "--to", in, "--min-age", "1s", "--stable-wait", "0s", "--after", "archive")
	if b, _ := os.ReadFile(filepath.Join(in, "put.xml")); string(b) != "<put/>" {
		t.Errorf("pulled put.xml = %q", b)
	}
	if _, err := os.Stat(filepath.Join(site, "outbox", "put.xml")); !os.IsNotExist(err) {
		t.Errorf("put.xml still in the outbox: %v", err)
	}
	if out := run("sites", "ls", "real", "archive"); !strings.Contains(out, "put") {
		t.Errorf("archive listing:\n%s", out)
	}
}
