package transfer

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrUnreachable means the site could not be reached or the connection
// was lost or stalled: the run may be retried later (exit 75).
var ErrUnreachable = errors.New("site unreachable")

// SFTPConfig says how to reach an sftp site. Secrets are never held here:
// only the names of the environment variables that carry them.
type SFTPConfig struct {
	Host string
	Port int
	User string
	// KeyFile is a private key; its passphrase, if any, is in the
	// environment variable KeyPassphraseEnv.
	KeyFile          string
	KeyPassphraseEnv string
	// PasswordEnv names the environment variable holding the password.
	PasswordEnv string
	// KnownHosts is the known_hosts file; empty means ~/.ssh/known_hosts.
	KnownHosts     string
	ConnectTimeout time.Duration
	// IdleTimeout ends a connection on which nothing arrives for that
	// long, so a stalled server cannot hang a run.
	IdleTimeout time.Duration
	// Root, an absolute path on the server, confines every path of the
	// site below it; empty means no confinement.
	Root string
}

// SFTP is a site on an SFTP server. Paths mean what they mean to the
// OpenSSH sftp client: with a leading "/" absolute on the server, else
// relative to the folder the server starts the session in (normally the
// user's home). It is safe for concurrent use; Reconnect replaces a lost
// connection.
type SFTP struct {
	cfg SFTPConfig
	mu  sync.Mutex // held while reconnecting
	cur atomic.Pointer[sftpSession]
}

// sftpSession is one connection.
type sftpSession struct {
	conn   *idleConn
	ssh    *ssh.Client
	client *sftp.Client
	posix  bool
	// refuses says the server's rename refuses an existing target, so a
	// rename that must not replace one needs no look first.
	refuses bool
	// wd is the folder the session started in, asked for only when a
	// root confines the site's paths.
	wd   string
	stop chan struct{}
	once sync.Once
}

func (s *SFTP) sess() *sftpSession { return s.cur.Load() }

// DialSFTP connects, verifies the host key and starts the sftp subsystem.
func DialSFTP(cfg SFTPConfig) (*SFTP, error) {
	if cfg.Port == 0 {
		cfg.Port = 22
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	s := &SFTP{cfg: cfg}
	ss, err := dialSession(cfg)
	if err != nil {
		return nil, err
	}
	s.cur.Store(ss)
	return s, nil
}

// Reconnect replaces a lost connection with a new one. When another
// caller has already done so and the connection works, it does nothing.
func (s *SFTP) Reconnect() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.sess()
	if old.conn.failure() == nil {
		if _, err := old.client.Getwd(); err == nil {
			return nil
		}
	}
	ss, err := dialSession(s.cfg)
	if err != nil {
		return err
	}
	s.cur.Store(ss)
	old.close()
	return nil
}

func dialSession(cfg SFTPConfig) (*sftpSession, error) {
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	khFile := cfg.KnownHosts
	if khFile == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("sftp %s: no known_hosts file configured and no home folder: %w", addr, err)
		}
		khFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	hostKeyCB, algos, err := hostKeyCheck(khFile, addr, cfg)
	if err != nil {
		return nil, err
	}
	auths, closeAgent, err := authMethods(cfg)
	if err != nil {
		return nil, fmt.Errorf("sftp %s: %w", addr, err)
	}
	defer closeAgent()
	sc := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auths,
		HostKeyCallback:   hostKeyCB,
		HostKeyAlgorithms: algos,
		Timeout:           cfg.ConnectTimeout,
	}
	raw, err := net.DialTimeout("tcp", addr, cfg.ConnectTimeout)
	if err != nil {
		return nil, fmt.Errorf("sftp %s: connect: %w: %v", addr, ErrUnreachable, err)
	}
	// The handshake must end within the connect timeout.
	raw.SetDeadline(time.Now().Add(cfg.ConnectTimeout))
	ic := &idleConn{Conn: raw, idle: cfg.IdleTimeout}
	cc, chans, reqs, err := ssh.NewClientConn(ic, addr, sc)
	if err != nil {
		raw.Close()
		return nil, dialErr(addr, cfg, err)
	}
	raw.SetDeadline(time.Time{})
	ic.start()
	client := ssh.NewClient(cc, chans, reqs)
	// Large files are read and written with many requests in flight.
	sf, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("sftp %s: start the sftp subsystem: %w", addr, connErr(err))
	}
	s := &sftpSession{conn: ic, ssh: client, client: sf, stop: make(chan struct{})}
	_, s.posix = sf.HasExtension("posix-rename@openssh.com")
	// OpenSSH's sftp server renames a file with link and unlink (or, where
	// the file system has no links, only when a stat finds no target), so
	// an existing target is refused. It is known by the server's name and
	// an extension of its own (pkg/sftp's server, whose rename replaces the
	// target, offers the other openssh.com ones): another sftp server
	// behind OpenSSH's sshd, or one older than OpenSSH 8.5, is looked at
	// first as any other.
	_, limits := sf.HasExtension("limits@openssh.com")
	s.refuses = renameRefuses(string(client.ServerVersion()), limits)
	if cfg.Root != "" {
		if s.wd, err = sf.Getwd(); err != nil {
			s.close()
			return nil, fmt.Errorf("sftp %s: ask for the login folder: %w", addr, connErr(err))
		}
	}
	go s.keepalive(cfg.IdleTimeout)
	return s, nil
}

// keepalive asks the server for a reply now and then, so a healthy idle
// connection keeps receiving data and a stalled one hits the idle timeout.
func (s *sftpSession) keepalive(idle time.Duration) {
	t := time.NewTicker(idle / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			go s.ssh.SendRequest("keepalive@openssh.com", true, nil)
		}
	}
}

// Close ends the session.
func (s *SFTP) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sess().close()
}

func (s *sftpSession) close() error {
	s.once.Do(func() { close(s.stop) })
	s.client.Close()
	return s.ssh.Close()
}

// Broken says why the connection was lost, or nil while it is up.
func (s *SFTP) Broken() error {
	if err := s.sess().conn.failure(); err != nil {
		return fmt.Errorf("sftp %s: connection lost: %w: %v", s.String(), ErrUnreachable, err)
	}
	return nil
}

// String names the site for messages.
func (s *SFTP) String() string {
	return s.cfg.User + "@" + net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
}

// hostKeyCheck builds the host key callback from known_hosts and the host
// key algorithms known for addr, so a server offering several key types
// negotiates one we can verify.
func hostKeyCheck(file, addr string, cfg SFTPConfig) (ssh.HostKeyCallback, []string, error) {
	hint := fmt.Sprintf("ssh-keyscan -p %d %s >> %s", cfg.Port, cfg.Host, file)
	if _, err := os.Stat(file); err != nil {
		return nil, nil, fmt.Errorf("sftp %s: known_hosts file %s: %v; add the server's key with: %s (and check its fingerprint with the partner)", addr, file, err, hint)
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, nil, fmt.Errorf("sftp %s: known_hosts file %s: %w", addr, file, err)
	}
	// Ask the callback about a key no host has: the KeyError lists the
	// keys known for this host.
	var algos []string
	probe, perr := probeKey()
	if perr == nil {
		tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: cfg.Port}
		var ke *knownhosts.KeyError
		if err := cb(addr, tcp, probe); errors.As(err, &ke) {
			seen := map[string]bool{}
			for _, k := range ke.Want {
				for _, a := range algosFor(k.Key.Type()) {
					if !seen[a] {
						seen[a] = true
						algos = append(algos, a)
					}
				}
			}
		}
	}
	wrapped := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ke) && len(ke.Want) == 0:
			return &hostKeyError{fmt.Sprintf("host key of %s is unknown: it is not in %s (server offered %s %s); add it with: %s and check its fingerprint with the partner",
				addr, file, key.Type(), ssh.FingerprintSHA256(key), hint)}
		case errors.As(err, &ke):
			return &hostKeyError{fmt.Sprintf("host key of %s has CHANGED: the server offered %s %s, which does not match %s line %d; this may be an attack. If the partner confirms the new key, remove the old line and add it with: %s",
				addr, key.Type(), ssh.FingerprintSHA256(key), ke.Want[0].Filename, ke.Want[0].Line, hint)}
		}
		return &hostKeyError{fmt.Sprintf("host key of %s: %v", addr, err)}
	}
	return wrapped, algos, nil
}

type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }

var (
	probeOnce sync.Once
	probePub  ssh.PublicKey
	probeErr  error
)

// probeKey is a throwaway key used to ask known_hosts what it holds.
func probeKey() (ssh.PublicKey, error) {
	probeOnce.Do(func() {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			probeErr = err
			return
		}
		probePub, probeErr = ssh.NewPublicKey(pub)
	})
	return probePub, probeErr
}

// algosFor maps a known_hosts key type to the host key algorithms that
// verify with it.
func algosFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// authMethods are, in order: the key file, ssh-agent, the password.
func authMethods(cfg SFTPConfig) ([]ssh.AuthMethod, func(), error) {
	var out []ssh.AuthMethod
	closer := func() {}
	if cfg.KeyFile != "" {
		pem, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, closer, fmt.Errorf("key_file: %w", err)
		}
		var signer ssh.Signer
		if cfg.KeyPassphraseEnv != "" && os.Getenv(cfg.KeyPassphraseEnv) != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(os.Getenv(cfg.KeyPassphraseEnv)))
			if err != nil {
				return nil, closer, fmt.Errorf("key_file %s: cannot decrypt it with the passphrase in $%s (%v)", cfg.KeyFile, cfg.KeyPassphraseEnv, err)
			}
		} else {
			signer, err = ssh.ParsePrivateKey(pem)
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, closer, fmt.Errorf("key_file %s is protected by a passphrase: set key_passphrase_env to the name of an environment variable holding it", cfg.KeyFile)
			}
			if err != nil {
				return nil, closer, fmt.Errorf("key_file %s: %v", cfg.KeyFile, err)
			}
		}
		out = append(out, ssh.PublicKeys(signer))
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			closer = func() { c.Close() }
			out = append(out, ssh.PublicKeysCallback(agent.NewClient(c).Signers))
		}
	}
	if cfg.PasswordEnv != "" {
		pw, ok := os.LookupEnv(cfg.PasswordEnv)
		if !ok {
			return nil, closer, fmt.Errorf("password_env: the environment variable %s is not set", cfg.PasswordEnv)
		}
		out = append(out, ssh.Password(pw))
	}
	if len(out) == 0 {
		return nil, closer, errors.New("no way to log in: set key_file or password_env, or run an ssh-agent (SSH_AUTH_SOCK)")
	}
	return out, closer, nil
}

// dialErr sorts handshake failures: host key and login problems are
// permanent (exit 1), the rest means the site is unreachable (exit 75).
func dialErr(addr string, cfg SFTPConfig, err error) error {
	var hk *hostKeyError
	if errors.As(err, &hk) {
		return fmt.Errorf("sftp %s: %s", addr, hk.msg)
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("sftp %s: login as %s refused: check the user, key_file, password_env or agent keys", addr, cfg.User)
	}
	return fmt.Errorf("sftp %s: ssh handshake: %w", addr, connErr(err))
}

// isConnErr says whether err is a lost, reset or stalled connection.
func isConnErr(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrUnreachable):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, sftp.ErrSSHFxConnectionLost):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	}
	return strings.Contains(err.Error(), "connection lost")
}

// connErr wraps a connection failure in ErrUnreachable.
func connErr(err error) error {
	if isConnErr(err) && !errors.Is(err, ErrUnreachable) {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return err
}

// rerr maps an sftp error to the package's sentinels, keeping the text.
func (s *SFTP) rerr(op, p string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %q: %w", op, p, ErrNotExist)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s %q: permission denied on the server", op, p)
	}
	if b := s.Broken(); b != nil {
		return fmt.Errorf("%s %q: %w", op, p, b)
	}
	if isConnErr(err) {
		return fmt.Errorf("%s %q on %s: %w: %v", op, p, s, ErrUnreachable, err)
	}
	return fmt.Errorf("%s %q: %w", op, p, err)
}

// Check cleans p and, when the site has a root, refuses a path outside it:
// a relative path counts from the login folder, as the server takes it.
func (s *SFTP) Check(p string) (string, error) {
	clean, err := CheckFolder(s.cfg.Root, p)
	if err != nil || s.cfg.Root == "" || path.IsAbs(clean) {
		return clean, err
	}
	return clean, confine(s.cfg.Root, p, path.Join(s.sess().wd, clean))
}

func (s *SFTP) resolve(p string) (string, error) {
	clean, err := s.Check(p)
	if err != nil {
		return "", err
	}
	if clean == "" {
		return ".", nil
	}
	return clean, nil
}

// List returns the entries of a folder.
func (s *SFTP) List(dir string) ([]Entry, error) {
	rp, err := s.resolve(dir)
	if err != nil {
		return nil, err
	}
	infos, err := s.sess().client.ReadDir(rp)
	if err != nil {
		return nil, s.rerr("list", dir, err)
	}
	out := make([]Entry, 0, len(infos))
	for _, fi := range infos {
		out = append(out, entryOf(fi))
	}
	return out, nil
}

// Stat describes one file or folder.
func (s *SFTP) Stat(p string) (Entry, error) {
	rp, err := s.resolve(p)
	if err != nil {
		return Entry{}, err
	}
	fi, err := s.sess().client.Stat(rp)
	if err != nil {
		return Entry{}, s.rerr("stat", p, err)
	}
	return entryOf(fi), nil
}

// Open opens a remote file for reading.
func (s *SFTP) Open(p string) (io.ReadCloser, error) {
	rp, err := s.resolve(p)
	if err != nil {
		return nil, err
	}
	ss := s.sess()
	f, err := ss.client.Open(rp)
	if err != nil {
		return nil, s.rerr("open", p, err)
	}
	return &sftpFile{s: s, ss: ss, f: f, p: p, op: "read"}, nil
}

// Create makes a new remote file, failing if it exists.
func (s *SFTP) Create(p string) (io.WriteCloser, error) {
	rp, err := s.resolve(p)
	if err != nil {
		return nil, err
	}
	ss := s.sess()
	f, err := ss.client.OpenFile(rp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		if _, serr := ss.client.Lstat(rp); serr == nil {
			return nil, fmt.Errorf("create %q: %w", p, ErrExist)
		}
		return nil, s.rerr("create", p, err)
	}
	return &sftpFile{s: s, ss: ss, f: f, p: p, op: "write"}, nil
}

// sftpFile maps the errors of a remote file's reads and writes.
type sftpFile struct {
	s  *SFTP
	ss *sftpSession // the connection the file was opened on
	f  *sftp.File
	p  string
	op string
}

func (f *sftpFile) Read(b []byte) (int, error) {
	n, err := f.f.Read(b)
	if err != nil && err != io.EOF {
		err = f.rerr(err)
	} else if err == io.EOF {
		if br := f.broken(); br != nil {
			err = br
		}
	}
	return n, err
}

// broken says why the file's connection was lost, or nil.
func (f *sftpFile) broken() error {
	if err := f.ss.conn.failure(); err != nil {
		return fmt.Errorf("sftp %s: connection lost: %w: %v", f.s.String(), ErrUnreachable, err)
	}
	return nil
}

// rerr is SFTP.rerr, but a lost connection is that of the file.
func (f *sftpFile) rerr(err error) error {
	if br := f.broken(); br != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s %q: %w", f.op, f.p, br)
	}
	return f.s.rerr(f.op, f.p, err)
}

func (f *sftpFile) Write(b []byte) (int, error) {
	n, err := f.f.Write(b)
	if err != nil {
		err = f.rerr(err)
	}
	return n, err
}

// WriteTo lets io.Copy read with several requests in flight.
func (f *sftpFile) WriteTo(w io.Writer) (int64, error) {
	n, err := f.f.WriteTo(w)
	if err != nil {
		err = f.rerr(err)
	} else if br := f.broken(); br != nil {
		err = br
	}
	return n, err
}

// ReadFrom lets io.Copy write with several requests in flight.
func (f *sftpFile) ReadFrom(r io.Reader) (int64, error) {
	n, err := f.f.ReadFrom(r)
	if err != nil {
		err = f.rerr(err)
	}
	return n, err
}

func (f *sftpFile) Close() error {
	if err := f.f.Close(); err != nil {
		return f.rerr(err)
	}
	return nil
}

// Rename moves a file. With overwrite it uses posix-rename@openssh.com
// when the server has it. Without, it fails with ErrExist when the target
// exists: it looks first, unless the server is OpenSSH's, whose rename
// (link and unlink) refuses an existing target, one request less per
// pushed file.
func (s *SFTP) Rename(from, to string, overwrite bool) error {
	src, err := s.resolve(from)
	if err != nil {
		return err
	}
	dst, err := s.resolve(to)
	if err != nil {
		return err
	}
	if overwrite && s.sess().posix {
		if err := s.sess().client.PosixRename(src, dst); err != nil {
			return s.rerr("rename "+from+" to", to, err)
		}
		return nil
	}
	// On OpenSSH the rename itself is the look.
	if overwrite || !s.sess().refuses {
		if _, err := s.sess().client.Lstat(dst); err == nil {
			if !overwrite {
				return fmt.Errorf("rename %s to %q: %w", from, to, ErrExist)
			}
			// No posix rename: drop the target first.
			if err := s.sess().client.Remove(dst); err != nil {
				return s.rerr("remove", to, err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return s.rerr("stat", to, err)
		}
	}
	if err := s.sess().client.Rename(src, dst); err != nil {
		if _, serr := s.sess().client.Lstat(dst); serr == nil {
			return fmt.Errorf("rename %s to %q: %w", from, to, ErrExist)
		}
		return s.rerr("rename "+from+" to", to, err)
	}
	return nil
}

// Remove deletes a file.
func (s *SFTP) Remove(p string) error {
	rp, err := s.resolve(p)
	if err != nil {
		return err
	}
	if err := s.sess().client.Remove(rp); err != nil {
		return s.rerr("remove", p, err)
	}
	return nil
}

// Mkdir makes a folder and its parents.
func (s *SFTP) Mkdir(p string) error {
	rp, err := s.resolve(p)
	if err != nil {
		return err
	}
	if err := s.sess().client.MkdirAll(rp); err != nil {
		return s.rerr("mkdir", p, err)
	}
	return nil
}

// idleConn ends the connection when a read or write makes no progress for
// idle: each call pushes the deadline forward.
type idleConn struct {
	net.Conn
	idle time.Duration
	on   atomic.Bool

	mu  sync.Mutex
	err error
}

func (c *idleConn) start() { c.on.Store(true) }

func (c *idleConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *idleConn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("no data for %s (idle_timeout): %v", c.idle, err)
		}
		c.err = err
	}
	c.mu.Unlock()
}

func (c *idleConn) Read(b []byte) (int, error) {
	if c.on.Load() {
		c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	}
	n, err := c.Conn.Read(b)
	if err != nil {
		c.fail(err)
		// A stalled or broken connection is closed so every waiting
		// request ends.
		c.Conn.Close()
	}
	return n, err
}

func (c *idleConn) Write(b []byte) (int, error) {
	if c.on.Load() {
		c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	}
	n, err := c.Conn.Write(b)
	if err != nil {
		c.fail(err)
		c.Conn.Close()
	}
	return n, err
}

// renameRefuses says whether the sftp server of an SSH server that names
// itself version, and offers OpenSSH's limits extension or not, is
// OpenSSH's own, whose rename refuses an existing target. Win32-OpenSSH
// (OpenSSH_for_Windows) is not: its rename deletes the target first.
func renameRefuses(version string, limits bool) bool {
	return limits && strings.HasPrefix(version, "SSH-2.0-OpenSSH") &&
		!strings.HasPrefix(version, "SSH-2.0-OpenSSH_for_Windows")
}
