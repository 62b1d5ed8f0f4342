package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// superuser is the role initdb makes; every test database belongs to it.
const superuser = "posbridge"

// rootPrefix names the server folders in the temporary directory, so that
// Start can find and remove those whose test binary died before Main.
const rootPrefix = "posbridge-pgtest-"

// errNotInstalled is what Start reports when no PostgreSQL server binaries
// are found: a reason to skip, except in CI.
var errNotInstalled = errors.New("no PostgreSQL server found (neither pg_config --bindir nor /usr/lib/postgresql/*/bin has initdb and postgres): install Debian's postgresql package (apt-get install postgresql)")

// server is a cluster in a temporary folder and its running postmaster.
type server struct {
	bin  string              // the PostgreSQL programs' folder
	cred *syscall.Credential // whom they run as; nil: this process
	root string              // temporary folder: data, sock, postgres.log
	lock *os.File            // root, locked while the server is ours (see sweep)

	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when the postmaster has exited
	admin  *sql.DB       // the postgres database, to create and drop test databases
}

// url is the connection URL of database name on s.
func (s *server) url(name string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, name)
}

// startServer makes a new cluster in a temporary folder and starts its
// postmaster on a free loopback port.
func startServer() (_ *server, err error) {
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	base := os.TempDir()
	sweep(base)
	s := &server{bin: bin}
	if s.root, s.lock, err = makeRoot(base); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	// initdb and postgres refuse to run as root: as root, they run as the
	// postgres user, in folders it owns.
	if s.cred, err = serverCredential(); err != nil {
		return nil, err
	}
	if err := os.Mkdir(s.path("sock"), 0o700); err != nil {
		return nil, err
	}
	if s.cred != nil {
		for _, dir := range []string{s.root, s.path("sock")} {
			if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	// The C locale compares text bytewise, as SQLite does (issue 17).
	initdb := s.command("initdb",
		"-D", s.path("data"), "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb in %s: %w\n%s", s.path("data"), err, out)
	}
	// A free port can be taken by someone else before the postmaster binds
	// it: then try another.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		err = s.run(port)
		if err == nil {
			return s, nil
		}
		if attempt == 5 || !errors.Is(err, errPortTaken) {
			return nil, err
		}
	}
}

// errPortTaken is a postmaster that could not bind its port.
var errPortTaken = errors.New("port taken")

// path is the file or folder name in the server's folder.
func (s *server) path(name string) string {
	return filepath.Join(s.root, name)
}

// run starts the postmaster on port and waits until it accepts
// connections.
func (s *server) run(port int) error {
	// Appended to: a restart (Server.Start) keeps the log of the run before.
	logFile, err := os.OpenFile(s.path("postgres.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the postmaster has its own copy
	// Only loopback, its own socket folder: a system cluster on this host
	// (Debian starts one on 5432 with /var/run/postgresql) is left alone.
	// The data is thrown away, so durability is traded for speed.
	cmd := s.command("postgres",
		"-D", s.path("data"), "-p", strconv.Itoa(port), "-k", s.path("sock"),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	exited := make(chan struct{})
	if err := startLocked(cmd, exited); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd, s.exited, s.port = cmd, exited, port
	s.admin, err = sql.Open("pgx", s.url("postgres"))
	if err != nil {
		return err
	}
	err = s.waitReady(30 * time.Second)
	if err == nil {
		return nil
	}
	s.stopPostmaster()
	log, _ := os.ReadFile(s.path("postgres.log"))
	if bytes.Contains(log, []byte("could not bind")) || bytes.Contains(log, []byte("could not create any TCP/IP sockets")) {
		err = fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return fmt.Errorf("postgres on port %d: %w\n%s", port, err, log)
}

// waitReady pings the server until it answers, exits or timeout passes.
func (s *server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.admin.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited before accepting connections (%s)", s.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections after %s: %w", timeout, err)
		}
	}
}

// startLocked starts cmd from a thread that stays alive until cmd exits,
// and closes exited then. The kernel sends cmd its parent-death signal when
// the thread that started it ends, not the process: a thread the Go runtime
// retires would stop the server under a running test.
func startLocked(cmd *exec.Cmd, exited chan<- struct{}) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait() // how it ended is in cmd.ProcessState
		}
		close(exited)
	}()
	return <-started
}

// stop stops the postmaster (a fast shutdown: sessions are ended) and
// removes the server's folder. It is safe on a server that never started.
func (s *server) stop() {
	s.stopPostmaster()
	if s.root != "" {
		os.RemoveAll(s.root)
	}
	if s.lock != nil {
		s.lock.Close()
	}
}

// stopPostmaster shuts the postmaster down and waits until it has exited,
// killing it if a fast shutdown takes too long.
func (s *server) stopPostmaster() {
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// command is the PostgreSQL program name, run in the server's folder as
// s.cred with a plain C locale environment. It gets SIGINT (a fast
// shutdown for the postmaster) if the test binary dies, so that no server
// outlives its tests.
func (s *server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.root
	cmd.Env = []string{"LC_ALL=C", "PATH=" + s.bin + ":/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGINT}
	return cmd
}

// serverCredential is whom initdb and postgres run as: nil (this process)
// unless this process is root, which they refuse; then the postgres user.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as another user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// findBinDir is the folder of the PostgreSQL server programs: pg_config's
// bindir, else the newest /usr/lib/postgresql/VERSION/bin (Debian's layout,
// which does not put them on PATH).
func findBinDir() (string, error) {
	var dirs []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versions, func(a, b string) int { return compareVersions(b, a) })
	dirs = append(dirs, versions...)
	for _, dir := range dirs {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", errNotInstalled
}

// compareVersions orders /usr/lib/postgresql/VERSION/bin paths by VERSION
// as a number, so that 15 comes after 9.6.
func compareVersions(a, b string) int {
	va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(a)), 64)
	vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(b)), 64)
	switch {
	case va < vb:
		return -1
	case va > vb:
		return 1
	}
	return 0
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// freePort is a loopback TCP port nobody listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// makeRoot makes the server's folder in base and locks it for the life of
// this process. The folder is made under a name sweep ignores and renamed
// once locked, so that sweep never takes a folder being set up for
// unlocked leftovers.
func makeRoot(base string) (string, *os.File, error) {
	tmp, err := os.MkdirTemp(base, "."+rootPrefix)
	if err != nil {
		return "", nil, err
	}
	lock, err := lockDir(tmp, 0)
	if err != nil {
		os.Remove(tmp)
		return "", nil, err
	}
	root := filepath.Join(base, strings.TrimPrefix(filepath.Base(tmp), "."))
	if err := os.Rename(tmp, root); err != nil {
		lock.Close()
		os.Remove(tmp)
		return "", nil, err
	}
	return root, lock, nil
}

// sweep removes the server folders in base left by test binaries that died
// before they could (their lock went with them). A postmaster still in such
// a folder is shutting down: it got its parent-death signal.
func sweep(base string) {
	roots, _ := filepath.Glob(filepath.Join(base, rootPrefix+"*"))
	for _, root := range roots {
		lock, err := lockDir(root, syscall.LOCK_NB)
		if err != nil {
			continue // in use, or not ours to judge
		}
		os.RemoveAll(root)
		lock.Close()
	}
}

// lockDir opens dir and takes an exclusive flock on it; flags adds
// LOCK_NB. The lock lasts until the file is closed or the process ends.
func lockDir(dir string, flags int) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|flags); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}
