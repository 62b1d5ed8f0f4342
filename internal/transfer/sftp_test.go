package transfer_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/transfer"
)

// sftpServer is an in-process SSH server on 127.0.0.1 whose sftp
// subsystem serves a folder.
type sftpServer struct {
	addr     string
	port     int
	hostKey  ssh.Signer
	userKey  string // private key file
	password string
}

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startSFTP serves root; the user logs in with the key written to a file
// or with the password "s3cret".
func startSFTP(t *testing.T, root string, extraHostKeys ...ssh.Signer) *sftpServer {
	t.Helper()
	return startSFTPWith(t, func(ch io.ReadWriteCloser) {
		s, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(root))
		if err != nil {
			return
		}
		s.Serve()
	}, extraHostKeys...)
}

// startSFTPWith is startSFTP with serve running the sftp subsystem.
func startSFTPWith(t *testing.T, serve func(io.ReadWriteCloser), extraHostKeys ...ssh.Signer) *sftpServer {
	t.Helper()
	return startSFTPAs(t, "", serve, extraHostKeys...)
}

// startSFTPAs is startSFTPWith with the server naming itself version in
// the SSH handshake ("" for x/crypto's default).
func startSFTPAs(t *testing.T, version string, serve func(io.ReadWriteCloser), extraHostKeys ...ssh.Signer) *sftpServer {
	t.Helper()
	dir := t.TempDir()
	_, upriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(upriv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	userPub, err := ssh.NewPublicKey(upriv.Public())
	if err != nil {
		t.Fatal(err)
	}
	srv := &sftpServer{hostKey: newKey(t), userKey: keyFile, password: "s3cret"}
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if c.User() == "bob" && string(pw) == srv.password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == "bob" && bytes.Equal(k.Marshal(), userPub.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.ServerVersion = version
	cfg.AddHostKey(srv.hostKey)
	for _, k := range extraHostKeys {
		cfg.AddHostKey(k)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv.addr = ln.Addr().String()
	srv.port = ln.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSSH(c, cfg, serve)
		}
	}()
	return srv
}

func serveSSH(c net.Conn, cfg *ssh.ServerConfig, serve func(io.ReadWriteCloser)) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			for r := range creqs {
				ok := r.Type == "subsystem" && len(r.Payload) >= 4 && string(r.Payload[4:]) == "sftp"
				r.Reply(ok, nil)
				if ok {
					go func() {
						defer ch.Close()
						serve(ch)
					}()
				}
			}
		}()
	}
}

// knownHosts writes a known_hosts file holding key for the server.
func (s *sftpServer) knownHosts(t *testing.T, keys ...ssh.PublicKey) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, k) + "\n")
	}
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *sftpServer) config(t *testing.T) transfer.SFTPConfig {
	t.Setenv("SSH_AUTH_SOCK", "")
	return transfer.SFTPConfig{Host: "127.0.0.1", Port: s.port, User: "bob", KeyFile: s.userKey,
		KnownHosts: s.knownHosts(t, s.hostKey.PublicKey()), ConnectTimeout: 3 * time.Second, IdleTimeout: 3 * time.Second}
}

func dial(t *testing.T, cfg transfer.SFTPConfig) *transfer.SFTP {
	t.Helper()
	s, err := transfer.DialSFTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A rename that must not replace its target looks for it first unless
// the sftp server is OpenSSH's: an SSH server that names itself OpenSSH
// but runs another sftp server (pkg/sftp's, whose rename replaces) is
// looked at first too.
func TestSFTPRenameRefusesAnExistingTarget(t *testing.T) {
	root := t.TempDir()
	srv := startSFTPAs(t, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", func(ch io.ReadWriteCloser) {
		s, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(root))
		if err != nil {
			return
		}
		s.Serve()
	})
	site := dial(t, srv.config(t))
	os.WriteFile(filepath.Join(root, "a.tmp"), []byte("new"), 0o600)
	os.WriteFile(filepath.Join(root, "a.xml"), []byte("theirs"), 0o600)
	if err := site.Rename("a.tmp", "a.xml", false); !errors.Is(err, transfer.ErrExist) {
		t.Errorf("rename over an existing file = %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "a.xml")); string(b) != "theirs" {
		t.Errorf("the existing file holds %q after the refused rename", b)
	}
	if err := site.Rename("a.tmp", "b.xml", false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "b.xml")); string(b) != "new" {
		t.Errorf("renamed file holds %q", b)
	}
}

func TestSFTPPushAndPull(t *testing.T) {
	e := newEnv(t)
	srv := startSFTP(t, e.root)
	site := dial(t, srv.config(t))

	// Push two files through the generic push.
	out := t.TempDir()
	for _, n := range []string{"a.xml", "b.xml"} {
		os.WriteFile(filepath.Join(out, n), []byte("<"+n+"/>"), 0o600)
	}
	os.WriteFile(filepath.Join(out, "a.xml.done"), nil, 0o600)
	res, err := transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", FromDir: out, To: "archive", LockDir: e.locks})
	if err != nil || res.Done != 3 {
		t.Fatalf("push: %v %s", err, statuses(res))
	}
	for _, n := range []string{"a.xml", "b.xml"} {
		if b, err := os.ReadFile(filepath.Join(e.root, "archive", n)); err != nil || string(b) != "<"+n+"/>" {
			t.Errorf("pushed %s: %q %v", n, b, err)
		}
	}
	// The same name again fails without overwrite and works with it.
	os.WriteFile(filepath.Join(out, "a.xml"), []byte("<new/>"), 0o600)
	res, err = transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", Files: []string{filepath.Join(out, "a.xml")}, To: "archive", LockDir: e.locks})
	if err == nil || !strings.Contains(statuses(res), "exists on the site") {
		t.Fatalf("push over existing: %v %s", err, statuses(res))
	}
	res, err = transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", Files: []string{filepath.Join(out, "a.xml")}, To: "archive", Overwrite: true, LockDir: e.locks})
	if err != nil {
		t.Fatalf("push --overwrite: %v %s", err, statuses(res))
	}
	if b, _ := os.ReadFile(filepath.Join(e.root, "archive", "a.xml")); string(b) != "<new/>" {
		t.Errorf("overwritten a.xml = %q", b)
	}

	// Pull through the generic pull, deleting on the site.
	e.remote(t, "c.xml", "<c/>", time.Hour)
	res, err = transfer.Pull(context.Background(), e.d, site, transfer.PullOptions{SiteName: "s", From: "out", To: e.local,
		After: transfer.AfterDelete, LockDir: e.locks, Sleep: func(time.Duration) {}})
	if err != nil || res.Done != 1 {
		t.Fatalf("pull: %v %s", err, statuses(res))
	}
	if b, _ := os.ReadFile(filepath.Join(e.local, "c.xml")); string(b) != "<c/>" {
		t.Errorf("pulled c.xml = %q", b)
	}
	if _, err := os.Stat(filepath.Join(e.root, "out", "c.xml")); !os.IsNotExist(err) {
		t.Errorf("c.xml still on the site: %v", err)
	}
	// Create is exclusive; Stat of a missing file is ErrNotExist.
	if _, err := site.Create("archive/b.xml"); !errors.Is(err, transfer.ErrExist) {
		t.Errorf("Create of existing = %v, want ErrExist", err)
	}
	if _, err := site.Stat("nope"); !errors.Is(err, transfer.ErrNotExist) {
		t.Errorf("Stat missing = %v, want ErrNotExist", err)
	}
	if err := transfer.Probe(site, "out"); err != nil {
		t.Errorf("probe: %v", err)
	}
}

func TestSFTPPassword(t *testing.T) {
	srv := startSFTP(t, t.TempDir())
	cfg := srv.config(t)
	cfg.KeyFile = ""
	cfg.PasswordEnv = "TEST_SFTP_PW"
	t.Setenv("TEST_SFTP_PW", "s3cret")
	dial(t, cfg)

	t.Setenv("TEST_SFTP_PW", "wrong-pw-xyz")
	_, err := transfer.DialSFTP(cfg)
	if err == nil || !strings.Contains(err.Error(), "login as bob refused") || errors.Is(err, transfer.ErrUnreachable) {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-pw-xyz") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestSFTPMissingKeyFile(t *testing.T) {
	srv := startSFTP(t, t.TempDir())
	cfg := srv.config(t)
	cfg.KeyFile = filepath.Join(t.TempDir(), "nokey")
	_, err := transfer.DialSFTP(cfg)
	if err == nil || !strings.Contains(err.Error(), "key_file") || errors.Is(err, transfer.ErrUnreachable) {
		t.Fatalf("missing key file: %v", err)
	}
}

func TestSFTPHostKeys(t *testing.T) {
	srv := startSFTP(t, t.TempDir())
	hint := fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >> ", srv.port)

	cfg := srv.config(t)
	cfg.KnownHosts = filepath.Join(t.TempDir(), "empty")
	os.WriteFile(cfg.KnownHosts, nil, 0o600)
	_, err := transfer.DialSFTP(cfg)
	if err == nil || !strings.Contains(err.Error(), "is unknown") || !strings.Contains(err.Error(), hint) {
		t.Fatalf("unknown host: %v", err)
	}

	cfg.KnownHosts = srv.knownHosts(t, newKey(t).PublicKey())
	_, err = transfer.DialSFTP(cfg)
	if err == nil || !strings.Contains(err.Error(), "CHANGED") || !strings.Contains(err.Error(), hint) {
		t.Fatalf("changed host key: %v", err)
	}
	if errors.Is(err, transfer.ErrUnreachable) {
		t.Errorf("a host key error is not retryable: %v", err)
	}

	cfg.KnownHosts = filepath.Join(t.TempDir(), "missing")
	if _, err = transfer.DialSFTP(cfg); err == nil || !strings.Contains(err.Error(), hint) {
		t.Fatalf("missing known_hosts: %v", err)
	}
}

// A server with several host key types: the one in known_hosts is
// negotiated, though the client would prefer ECDSA.
func TestSFTPSeveralHostKeyTypes(t *testing.T) {
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es, err := ssh.NewSignerFromKey(ek)
	if err != nil {
		t.Fatal(err)
	}
	srv := startSFTP(t, t.TempDir(), es)
	dial(t, srv.config(t)) // known_hosts has only the ed25519 key
}

func TestSFTPUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	kh := filepath.Join(t.TempDir(), "kh")
	os.WriteFile(kh, nil, 0o600)
	t.Setenv("TEST_SFTP_PW", "x")
	_, err := transfer.DialSFTP(transfer.SFTPConfig{Host: "127.0.0.1", Port: port, User: "bob", PasswordEnv: "TEST_SFTP_PW",
		KnownHosts: kh, ConnectTimeout: time.Second, IdleTimeout: time.Second})
	if !errors.Is(err, transfer.ErrUnreachable) {
		t.Fatalf("refused connection = %v, want ErrUnreachable", err)
	}
}

// proxy forwards 127.0.0.1 connections to target; after limit bytes (both
// ways together) it cuts the connection, or with stall it stops
// forwarding and keeps it open.
type proxy struct {
	addr  string
	port  int
	limit int64
	stall bool
	n     atomic.Int64
	// With cutOnce only the first cut happens: later connections pass.
	cutOnce bool
	cut     atomic.Bool
}

func startProxy(t *testing.T, target string, limit int64, stall bool) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port, limit: limit, stall: stall}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
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
			mu.Lock()
			open = append(open, c, s)
			mu.Unlock()
			conns.Add(2)
			go func() { defer conns.Done(); p.pipe(c, s) }()
			go func() { defer conns.Done(); p.pipe(s, c) }()
		}
	}()
	return p
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if p.n.Add(int64(n)) > p.limit && !(p.cutOnce && p.cut.Load()) {
				p.cut.Store(true)
				if p.stall {
					io.Copy(io.Discard, src) // swallow everything, answer nothing
					return
				}
				dst.Close()
				src.Close()
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func through(t *testing.T, srv *sftpServer, p *proxy) transfer.SFTPConfig {
	cfg := srv.config(t)
	cfg.Port = p.port
	// The known_hosts line names the proxy's port.
	b := knownhosts.Line([]string{knownhosts.Normalize(p.addr)}, srv.hostKey.PublicKey())
	os.WriteFile(cfg.KnownHosts, []byte(b+"\n"), 0o600)
	return cfg
}

func TestSFTPCutDuringPush(t *testing.T) {
	e := newEnv(t)
	srv := startSFTP(t, e.root)
	p := startProxy(t, srv.addr, 300<<10, false)
	site := dial(t, through(t, srv, p))
	out := t.TempDir()
	big := bytes.Repeat([]byte("x"), 2<<20)
	os.WriteFile(filepath.Join(out, "big.xml"), big, 0o600)
	res, err := transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", FromDir: out, To: "archive", LockDir: e.locks})
	if !errors.Is(err, transfer.ErrUnreachable) {
		t.Fatalf("push through a cut connection = %v (%s), want ErrUnreachable", err, statuses(res))
	}
	if _, err := os.Stat(filepath.Join(e.root, "archive", "big.xml")); !os.IsNotExist(err) {
		t.Errorf("big.xml is on the site under its name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "big.xml")); err != nil {
		t.Errorf("local big.xml moved: %v", err)
	}
	// The next run, on a good connection, completes and cleans up.
	site2 := dial(t, srv.config(t))
	res, err = transfer.Push(context.Background(), e.d, site2, transfer.PushOptions{SiteName: "s", FromDir: out, To: "archive", LockDir: e.locks})
	if err != nil || res.Done != 1 {
		t.Fatalf("push again: %v %s", err, statuses(res))
	}
	if b, _ := os.ReadFile(filepath.Join(e.root, "archive", "big.xml")); !bytes.Equal(b, big) {
		t.Errorf("pushed file differs: %d bytes", len(b))
	}
	if _, err := os.Stat(filepath.Join(e.root, "archive", ".big.xml.tmp")); !os.IsNotExist(err) {
		t.Errorf("temp file left: %v", err)
	}
}

func TestSFTPCutDuringPull(t *testing.T) {
	e := newEnv(t)
	srv := startSFTP(t, e.root)
	p := startProxy(t, srv.addr, 300<<10, false)
	site := dial(t, through(t, srv, p))
	big := strings.Repeat("y", 2<<20)
	e.remote(t, "big.xml", big, time.Hour)
	o := transfer.PullOptions{SiteName: "s", From: "out", To: e.local, After: transfer.AfterDelete, LockDir: e.locks, Sleep: func(time.Duration) {}}
	res, err := transfer.Pull(context.Background(), e.d, site, o)
	if !errors.Is(err, transfer.ErrUnreachable) {
		t.Fatalf("pull through a cut connection = %v (%s), want ErrUnreachable", err, statuses(res))
	}
	if _, err := os.Stat(filepath.Join(e.local, "big.xml")); !os.IsNotExist(err) {
		t.Errorf("big.xml is here under its name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.root, "out", "big.xml")); err != nil {
		t.Errorf("remote big.xml gone: %v", err)
	}
	res, err = transfer.Pull(context.Background(), e.d, dial(t, srv.config(t)), o)
	if err != nil || res.Done != 1 {
		t.Fatalf("pull again: %v %s", err, statuses(res))
	}
	if b, _ := os.ReadFile(filepath.Join(e.local, "big.xml")); string(b) != big {
		t.Errorf("pulled file differs: %d bytes", len(b))
	}
}

func TestSFTPStalledServer(t *testing.T) {
	e := newEnv(t)
	srv := startSFTP(t, e.root)
	p := startProxy(t, srv.addr, 300<<10, true)
	cfg := through(t, srv, p)
	cfg.IdleTimeout = time.Second
	site := dial(t, cfg)
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "big.xml"), bytes.Repeat([]byte("x"), 2<<20), 0o600)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", FromDir: out, To: "archive", LockDir: e.locks})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, transfer.ErrUnreachable) || !strings.Contains(err.Error(), "idle_timeout") {
			t.Fatalf("stalled push = %v, want ErrUnreachable by idle_timeout", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("push against a stalled server hangs")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stalled push took %s", d)
	}
	if _, err := os.Stat(filepath.Join(e.root, "archive", "big.xml")); !os.IsNotExist(err) {
		t.Errorf("big.xml is on the site: %v", err)
	}
}

// A server that accepts and never says a word ends at the connect timeout.
func TestSFTPSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	kh := filepath.Join(t.TempDir(), "kh")
	os.WriteFile(kh, nil, 0o600)
	t.Setenv("TEST_SFTP_PW", "x")
	start := time.Now()
	_, err = transfer.DialSFTP(transfer.SFTPConfig{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, User: "bob", PasswordEnv: "TEST_SFTP_PW",
		KnownHosts: kh, ConnectTimeout: time.Second, IdleTimeout: time.Second})
	if !errors.Is(err, transfer.ErrUnreachable) {
		t.Fatalf("silent server = %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// fullDisk is an in-memory sftp server whose writes fail after 64 KiB,
// like a full disk.
type fullDisk struct{ sftp.FileWriter }

func (f fullDisk) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	w, err := f.FileWriter.Filewrite(r)
	if err != nil {
		return nil, err
	}
	return &fullWriter{w: w}, nil
}

type fullWriter struct {
	w io.WriterAt
	n atomic.Int64
}

func (f *fullWriter) WriteAt(b []byte, off int64) (int, error) {
	if f.n.Add(int64(len(b))) > 64<<10 {
		return 0, errors.New("no space left on device")
	}
	return f.w.WriteAt(b, off)
}

func TestSFTPDiskFull(t *testing.T) {
	e := newEnv(t)
	h := sftp.InMemHandler()
	h.FilePut = fullDisk{h.FilePut}
	srv := startSFTPWith(t, func(ch io.ReadWriteCloser) { sftp.NewRequestServer(ch, h).Serve() })
	site := dial(t, srv.config(t))
	if err := site.Mkdir("inbox"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "big.xml"), bytes.Repeat([]byte("z"), 1<<20), 0o600)
	os.WriteFile(filepath.Join(out, "big.xml.done"), nil, 0o600)
	res, err := transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", FromDir: out, To: "inbox", LockDir: e.locks})
	if err == nil || errors.Is(err, transfer.ErrUnreachable) || res.Done != 0 {
		t.Fatalf("push to a full disk = %v (%s), want a plain failure", err, statuses(res))
	}
	if !strings.Contains(statuses(res), "no space left") {
		t.Errorf("reason does not say why: %s", statuses(res))
	}
	for _, p := range []string{"inbox/big.xml", "inbox/.big.xml.tmp", "inbox/big.xml.done"} {
		if _, err := site.Stat(p); !errors.Is(err, transfer.ErrNotExist) {
			t.Errorf("%s on the site: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "big.xml")); err != nil {
		t.Errorf("local file moved: %v", err)
	}
}

// denyWrites is an in-memory sftp server that refuses every new file.
type denyWrites struct{ sftp.FileWriter }

func (denyWrites) Filewrite(*sftp.Request) (io.WriterAt, error) {
	return nil, sftp.ErrSSHFxPermissionDenied
}

func TestSFTPPermissionDenied(t *testing.T) {
	e := newEnv(t)
	h := sftp.InMemHandler()
	h.FilePut = denyWrites{h.FilePut}
	srv := startSFTPWith(t, func(ch io.ReadWriteCloser) { sftp.NewRequestServer(ch, h).Serve() })
	site := dial(t, srv.config(t))
	if err := site.Mkdir("inbox"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "a.xml"), []byte("<a/>"), 0o600)
	res, err := transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", FromDir: out, To: "inbox", LockDir: e.locks})
	if err == nil || errors.Is(err, transfer.ErrUnreachable) || !strings.Contains(statuses(res), "permission denied") {
		t.Fatalf("push to a read-only folder = %v (%s), want permission denied", err, statuses(res))
	}
	if err := transfer.Probe(site, "inbox"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("probe of a read-only folder = %v", err)
	}
}

// ledgerRows counts the ledger rows of each remote path.
func ledgerRows(t *testing.T, e *env, site string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	err := ledger.ListTransfers(context.Background(), e.d, ledger.TransferFilter{Site: site}, func(tr ledger.Transfer) error {
		rows[tr.RemotePath] = append(rows[tr.RemotePath], tr.Direction+":"+tr.Status)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// Many small files go up and come down several at a time, each once in
// the ledger, each marker after its file.
func TestSFTPParallel(t *testing.T) {
	e := newEnv(t)
	srv := startSFTP(t, e.root)
	site := dial(t, srv.config(t))
	out := t.TempDir()
	const n = 120
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%03d.csv", i)
		os.WriteFile(filepath.Join(out, name), []byte(strings.Repeat(name, 100)), 0o600)
		if i%10 == 0 {
			os.WriteFile(filepath.Join(out, name+".done"), nil, 0o600)
		}
	}
	res, err := transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", FromDir: out, To: "out",
		LockDir: e.locks, Parallel: 8})
	if err != nil || res.Done != n+n/10 {
		t.Fatalf("parallel push: %v, %d done: %s", err, res.Done, statuses(res))
	}
	// Results keep the order of the files: each marker right after its file.
	for i, f := range res.Files {
		if strings.HasSuffix(f.Remote, ".done") && res.Files[i-1].Remote+".done" != f.Remote {
			t.Errorf("marker %s not after its file (after %s)", f.Remote, res.Files[i-1].Remote)
		}
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%03d.csv", i)
		if b, err := os.ReadFile(filepath.Join(e.root, "out", name)); err != nil || string(b) != strings.Repeat(name, 100) {
			t.Fatalf("pushed %s: %d bytes, %v", name, len(b), err)
		}
	}
	old := time.Now().Add(-time.Hour)
	des, _ := os.ReadDir(filepath.Join(e.root, "out"))
	for _, de := range des {
		os.Chtimes(filepath.Join(e.root, "out", de.Name()), old, old)
	}
	o := transfer.PullOptions{SiteName: "s", From: "out", To: e.local, After: transfer.AfterKeep, LockDir: e.locks,
		Sleep: func(time.Duration) {}, Parallel: 8}
	res, err = transfer.Pull(context.Background(), e.d, site, o)
	if err != nil || res.Done != n+n/10 {
		t.Fatalf("parallel pull: %v, %d done: %s", err, res.Done, statuses(res))
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%03d.csv", i)
		if b, err := os.ReadFile(filepath.Join(e.local, name)); err != nil || string(b) != strings.Repeat(name, 100) {
			t.Fatalf("pulled %s: %d bytes, %v", name, len(b), err)
		}
	}
	// A second pull fetches nothing again.
	res, err = transfer.Pull(context.Background(), e.d, site, o)
	if err != nil || res.Done != 0 {
		t.Fatalf("second pull: %v, %d done", err, res.Done)
	}
	rows := ledgerRows(t, e, "s")
	if len(rows) != n+n/10 {
		t.Errorf("%d remote paths in the ledger, want %d", len(rows), n+n/10)
	}
	for p, r := range rows {
		if len(r) != 2 || r[0] == r[1] || !strings.HasSuffix(r[0], ":done") || !strings.HasSuffix(r[1], ":done") {
			t.Errorf("ledger rows of %s = %v, want one push and one pull, done", p, r)
		}
	}
}

// A file lost to a cut connection is retried on a new connection and the
// run succeeds: each file is in the ledger once.
func TestSFTPRetryAfterCut(t *testing.T) {
	e := newEnv(t)
	srv := startSFTP(t, e.root)
	retry := transfer.Retry{Retries: 2, Backoff: 10 * time.Millisecond}

	p := startProxy(t, srv.addr, 300<<10, false)
	p.cutOnce = true
	site := dial(t, through(t, srv, p))
	out := t.TempDir()
	big := bytes.Repeat([]byte("x"), 2<<20)
	os.WriteFile(filepath.Join(out, "big.xml"), big, 0o600)
	res, err := transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", FromDir: out, To: "archive",
		LockDir: e.locks, Retry: retry})
	if err != nil || res.Done != 1 || !p.cut.Load() {
		t.Fatalf("push with a retry: %v (cut %v) %s", err, p.cut.Load(), statuses(res))
	}
	if b, _ := os.ReadFile(filepath.Join(e.root, "archive", "big.xml")); !bytes.Equal(b, big) {
		t.Errorf("pushed file differs: %d bytes", len(b))
	}
	if _, err := os.Stat(filepath.Join(e.root, "archive", ".big.xml.tmp")); !os.IsNotExist(err) {
		t.Errorf("temp file left: %v", err)
	}

	p2 := startProxy(t, srv.addr, 300<<10, false)
	p2.cutOnce = true
	site2 := dial(t, through(t, srv, p2))
	e.remote(t, "big2.xml", string(big), time.Hour)
	res, err = transfer.Pull(context.Background(), e.d, site2, transfer.PullOptions{SiteName: "s", From: "out", To: e.local,
		After: transfer.AfterDelete, LockDir: e.locks, Sleep: func(time.Duration) {}, Retry: retry})
	if err != nil || res.Done != 1 || !p2.cut.Load() {
		t.Fatalf("pull with a retry: %v (cut %v) %s", err, p2.cut.Load(), statuses(res))
	}
	if b, _ := os.ReadFile(filepath.Join(e.local, "big2.xml")); !bytes.Equal(b, big) {
		t.Errorf("pulled file differs: %d bytes", len(b))
	}
	for path, r := range ledgerRows(t, e, "s") {
		if len(r) != 1 || !strings.HasSuffix(r[0], ":done") {
			t.Errorf("ledger rows of %s = %v, want one, done", path, r)
		}
	}

	// Without retries left the run gives up as unreachable.
	p3 := startProxy(t, srv.addr, 300<<10, false)
	site3 := dial(t, through(t, srv, p3))
	os.WriteFile(filepath.Join(out, "big3.xml"), big, 0o600)
	_, err = transfer.Push(context.Background(), e.d, site3, transfer.PushOptions{SiteName: "s", FromDir: out, To: "archive",
		LockDir: e.locks, Retry: retry})
	if !errors.Is(err, transfer.ErrUnreachable) {
		t.Fatalf("push through a dead link = %v, want ErrUnreachable", err)
	}
}

// A remote file appended to while a pull looks at it is left for a later
// run, which fetches it whole once it is stable.
func TestSFTPPullWhileAppended(t *testing.T) {
	e := newEnv(t)
	srv := startSFTP(t, e.root)
	site := dial(t, srv.config(t))
	p := e.remote(t, "grow.csv", "a,1\n", time.Hour)
	e.remote(t, "still.csv", "b,2\n", time.Hour)
	o := transfer.PullOptions{SiteName: "s", From: "out", To: e.local, After: transfer.AfterDelete, LockDir: e.locks, Parallel: 4,
		Sleep: func(time.Duration) {
			// The writer appends between the two looks.
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			f.WriteString("a,2\n")
			f.Close()
		}}
	res, err := transfer.Pull(context.Background(), e.d, site, o)
	if err != nil || res.Done != 1 || !strings.Contains(statuses(res), "grow.csv:skipped:still changing") {
		t.Fatalf("pull during an append: %v %s", err, statuses(res))
	}
	if _, err := os.Stat(filepath.Join(e.local, "grow.csv")); !os.IsNotExist(err) {
		t.Fatalf("grow.csv fetched while it changed: %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("grow.csv gone from the site: %v", err)
	}
	// Stable now: the next run fetches all of it.
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)
	o.Sleep = func(time.Duration) {}
	res, err = transfer.Pull(context.Background(), e.d, site, o)
	if err != nil || res.Done != 1 {
		t.Fatalf("pull when stable: %v %s", err, statuses(res))
	}
	if b, _ := os.ReadFile(filepath.Join(e.local, "grow.csv")); string(b) != "a,1\na,2\n" {
		t.Errorf("grow.csv = %q", b)
	}
}

// Two pulls of one site at once, each on its own connection: the second
// is refused while the first runs, and no file is fetched twice.
func TestSFTPTwoPullsAtOnce(t *testing.T) {
	e := newEnv(t)
	srv := startSFTP(t, e.root)
	const n = 40
	for i := 0; i < n; i++ {
		e.remote(t, fmt.Sprintf("f%02d.csv", i), strings.Repeat("z", 1000+i), time.Hour)
	}
	sites := []*transfer.SFTP{dial(t, srv.config(t)), dial(t, srv.config(t))}
	var wg sync.WaitGroup
	results := make([]*transfer.Result, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	for i := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = transfer.Pull(context.Background(), e.d, sites[i], transfer.PullOptions{SiteName: "s", From: "out",
				To: e.local, After: transfer.AfterKeep, LockDir: e.locks, Parallel: 4,
				Sleep: func(time.Duration) { time.Sleep(50 * time.Millisecond) }})
		}()
	}
	close(start)
	wg.Wait()
	done := 0
	for i := range errs {
		if errs[i] != nil && !errors.Is(errs[i], transfer.ErrBusy) {
			t.Fatalf("pull %d: %v", i, errs[i])
		}
		if results[i] != nil {
			done += results[i].Done
		}
	}
	// Whichever order they ran in, then once more: each file once.
	res, err := transfer.Pull(context.Background(), e.d, sites[0], transfer.PullOptions{SiteName: "s", From: "out",
		To: e.local, After: transfer.AfterKeep, LockDir: e.locks, Parallel: 4, Sleep: func(time.Duration) {}})
	if err != nil {
		t.Fatal(err)
	}
	done += res.Done
	if done != n {
		t.Errorf("%d files fetched in all, want %d", done, n)
	}
	for p, r := range ledgerRows(t, e, "s") {
		if len(r) != 1 || r[0] != "pull:done" {
			t.Errorf("ledger rows of %s = %v, want one pull, done", p, r)
		}
	}
}

// Paths as the OpenSSH sftp client means them: a leading "/" is absolute
// on the server, anything else counts from the login folder; a root
// refuses what leads outside it, before anything is written.
func TestSFTPPathsAndRoot(t *testing.T) {
	e := newEnv(t)
	srv := startSFTP(t, e.root) // the session starts in e.root
	abs := filepath.ToSlash(e.root)
	out := t.TempDir()
	push := func(site *transfer.SFTP, name, to string) (*transfer.Result, error) {
		t.Helper()
		f := filepath.Join(out, name)
		os.WriteFile(f, []byte("<"+name+" to='"+to+"'/>"), 0o600)
		return transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", Files: []string{f}, To: to, LockDir: e.locks})
	}
	site := dial(t, srv.config(t))
	for name, to := range map[string]string{"rel.xml": "archive", "abs.xml": abs + "/archive"} {
		if res, err := push(site, name, to); err != nil || res.Done != 1 {
			t.Fatalf("push to %s: %v %s", to, err, statuses(res))
		}
		if _, err := os.Stat(filepath.Join(e.root, "archive", name)); err != nil {
			t.Errorf("push to %s: %v", to, err)
		}
	}
	if res, err := push(site, "rel.xml", abs+"/archive"); err == nil || !strings.Contains(statuses(res), "exists on the site") {
		t.Errorf("the same file by its absolute path: %v %s", err, statuses(res))
	}

	cfg := srv.config(t)
	cfg.Root = abs + "/archive"
	confined := dial(t, cfg)
	for _, p := range []string{"archive", "archive/x", abs + "/archive", abs + "/archive/sub"} {
		if _, err := confined.Check(p); err != nil {
			t.Errorf("Check(%q) with root %s: %v", p, cfg.Root, err)
		}
	}
	for _, p := range []string{"", "out", "/etc", abs, abs + "/archived"} {
		_, err := confined.Check(p)
		if !errors.Is(err, transfer.ErrOutsideRoot) || !strings.Contains(err.Error(), cfg.Root) {
			t.Errorf("Check(%q) with root %s = %v, want ErrOutsideRoot naming the root", p, cfg.Root, err)
		}
	}
	if _, err := confined.Check("out"); err == nil || !strings.Contains(err.Error(), `"out" (`+abs+`/out)`) {
		t.Errorf("a relative path outside the root is shown in full: %v", err)
	}
	if res, err := push(confined, "esc.xml", "out"); !errors.Is(err, transfer.ErrOutsideRoot) || res != nil {
		t.Errorf("push out of the root = %v, %v", res, err)
	}
	if _, err := confined.Create("out/x.xml"); !errors.Is(err, transfer.ErrOutsideRoot) {
		t.Errorf("Create outside the root = %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.root, "out", ".esc.xml.tmp")); !os.IsNotExist(err) {
		t.Errorf("something was written outside the root: %v", err)
	}
	if res, err := push(confined, "in.xml", "archive"); err != nil || res.Done != 1 {
		t.Errorf("push inside the root: %v %s", err, statuses(res))
	}
}
