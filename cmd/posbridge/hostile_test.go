package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// Issue 13 item 4: a command stopped with SIGTERM while it reads a large
// file ends promptly with exit 1 (failed, nothing applied); one given a
// named pipe refuses it at once instead of waiting for a writer, which no
// signal could end.

// hostileRig is a data folder with the demo warehouses and vendors and a
// store-pos partner whose SKUs are cross referenced.
type hostileRig struct {
	t        *testing.T
	dir, cfg string
	env      []string
	target   string // the state (stateEnv)
}

func newHostileRig(t *testing.T) *hostileRig {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env, target := stateEnv(t, dir)
	r := &hostileRig{t: t, dir: dir, cfg: filepath.Join(dir, "posbridge.yaml"), env: env, target: target}
	cfg := "partners:\n  shop:\n    profile: store-pos\n    sku_code: xref\n    warehouse: DC1\n"
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r.run(0, "init")
	r.run(0, "load", "warehouses", filepath.Join(root, "testdata", "demo", "warehouses.csv"))
	r.run(0, "load", "vendors", filepath.Join(root, "testdata", "demo", "vendors.csv"))
	return r
}

func (r *hostileRig) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command("posbridge", append([]string{"--config", r.cfg}, args...)...)
	cmd.Env, cmd.Dir = r.env, r.dir
	return cmd
}

// run runs posbridge and checks its exit code.
func (r *hostileRig) run(want int, args ...string) string {
	r.t.Helper()
	out, err := r.cmd(args...).CombinedOutput()
	if code := exitCodeOf(r.t, err); code != want {
		r.t.Fatalf("posbridge %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	return string(out)
}

func exitCodeOf(t *testing.T, err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	default:
		t.Fatalf("posbridge did not exit: %v", err)
		return -1
	}
}

// write makes the file name in the rig's folder: head, then line(i) for i
// from 0 while the file is smaller than size.
func (r *hostileRig) write(name, head string, size int, line func(i int) string) string {
	r.t.Helper()
	path := filepath.Join(r.dir, name)
	f, err := os.Create(path)
	if err != nil {
		r.t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	n, _ := w.WriteString(head)
	for i := 0; n < size; i++ {
		m, _ := w.WriteString(line(i))
		n += m
	}
	if err := w.Flush(); err != nil {
		r.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// hasOpen says whether process pid holds path open.
func hasOpen(pid int, path string) bool {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if to, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && to == path {
			return true
		}
	}
	return false
}

func TestHostileInterruptedWhileReading(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 MB of input")
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc to see the file being read")
	}
	r := newHostileRig(t)
	const size = 60 << 20
	items := r.write("items.csv", "item,sku,description,vendor,price\n", size, func(i int) string {
		return fmt.Sprintf("IX%07d,S,Item %d,V00003,%d.99\n", i, i, i%100)
	})
	txn := r.write("txn.csv", "transaction_code,item,sku,warehouse,quantity\n", size, func(i int) string {
		return fmt.Sprintf("A,IX%07d,S,DC1,1\n", i)
	})
	orders := r.write("orders.json", "", size, func(i int) string {
		return fmt.Sprintf(`{"onlineReferenceNo": "O%d", "createdAt": "2026-03-01 10:00:00", "orderItems": [{"itemReferenceCode": "X%d", "quantity": 1}]}`+"\n", i, i)
	})
	xref := r.write("xref.csv", "item,sku,external_code\n", size, func(i int) string {
		return fmt.Sprintf("IX%07d,S,EXT%d\n", i, i)
	})
	for _, c := range []struct {
		name string
		file string
		args []string
	}{
		{"load", items, []string{"load", "items", items}},
		{"import inventory-transactions", txn, []string{"import", "inventory-transactions", txn}},
		{"import orders", orders, []string{"import", "orders", "--partner", "shop", orders}},
		{"xref load", xref, []string{"xref", "load", "shop", xref}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := r.cmd(c.args...)
			out, done := startCmd(t, cmd)
			deadline := time.Now().Add(20 * time.Second)
			for !hasOpen(cmd.Process.Pid, c.file) {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("the command did not open %s\n%s", c.file, out.String())
				}
				select {
				case err := <-done:
					t.Fatalf("the command ended before it was stopped (%v)\n%s", err, out.String())
				case <-time.After(10 * time.Millisecond):
				}
			}
			time.Sleep(200 * time.Millisecond)
			stopped := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				took := time.Since(stopped)
				if code := exitCodeOf(t, err); code != 1 {
					t.Fatalf("exit %d after SIGTERM, want 1\n%s", code, out.String())
				}
				if !strings.Contains(out.String(), "interrupted") {
					t.Errorf("the message does not say the command was interrupted:\n%s", out.String())
				}
				if took > 3*time.Second {
					t.Errorf("took %s to stop after SIGTERM", took.Round(time.Millisecond))
				}
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 15s after SIGTERM\n%s", out.String())
			}
		})
	}
	// Nothing of the interrupted commands was applied.
	out := r.run(0, "files", "list")
	for _, name := range []string{"items.csv", "txn.csv", "orders.json", "xref.csv"} {
		if strings.Contains(out, name) {
			t.Errorf("%s is in the file ledger after the interrupted command:\n%s", name, out)
		}
	}
}

// TestHostileInterruptedWhileWaiting: a command stopped while a statement
// of it waits for a lock another transaction holds (well within the lock
// timeout, which would exit 75) stops at once and exits 1, as every
// stopped command does (docs/operations.md). On PostgreSQL the statement
// is the first load's COPY into triggers.
func TestHostileInterruptedWhileWaiting(t *testing.T) {
	r := newHostileRig(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	d := openState(t, r.target)
	defer d.Close()
	hold := `UPDATE warehouses SET name = name`
	if dbtest.Postgres() {
		// Only the first load's COPY into triggers waits on it.
		hold = `LOCK TABLE triggers IN SHARE MODE`
	}
	_, release := dbtest.Hold(t, d, hold)
	defer release()
	cmd := r.cmd("load", "items", filepath.Join(root, "testdata", "demo", "items.csv"))
	out, done := startCmd(t, cmd)
	if dbtest.Postgres() {
		if n := dbtest.LockWaiters(t, d, 1); n != 1 {
			cmd.Process.Kill()
			t.Fatalf("%d sessions wait for the lock, want the load\n%s", n, out.String())
		}
	} else {
		time.Sleep(500 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if code := exitCodeOf(t, err); code != 1 || !strings.Contains(out.String(), "interrupted") {
			t.Fatalf("exit %d after SIGTERM, want 1 saying interrupted\n%s", code, out.String())
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running 5s after SIGTERM\n%s", out.String())
	}
}

// A named pipe given as FILE, or as the config, is refused at once; the
// command never waits for a writer.
func TestHostileNamedPipe(t *testing.T) {
	r := newHostileRig(t)
	pipe := filepath.Join(r.dir, "pipe.csv")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"load", "items", pipe}, 1},
		{[]string{"import", "inventory-transactions", pipe}, 1},
		{[]string{"import", "stores", pipe}, 1},
		{[]string{"import", "orders", "--partner", "shop", pipe}, 1},
		{[]string{"xref", "load", "shop", pipe}, 1},
		{[]string{"--config", pipe, "config", "validate"}, 2},
	} {
		t.Run(strings.Join(c.args[:2], " "), func(t *testing.T) {
			cmd := exec.Command("posbridge", c.args...)
			if c.args[0] != "--config" {
				cmd = r.cmd(c.args...)
			}
			cmd.Env, cmd.Dir = r.env, r.dir
			out, done := startCmd(t, cmd)
			select {
			case err := <-done:
				if code := exitCodeOf(t, err); code != c.code {
					t.Fatalf("exit %d, want %d\n%s", code, c.code, out.String())
				}
				if want := pipe + " is a named pipe (FIFO): not a regular file"; !strings.Contains(out.String(), want) {
					t.Fatalf("the message does not say %q:\n%s", want, out.String())
				}
			case <-time.After(5 * time.Second):
				// Blocked in open(2): SIGTERM does not end it either.
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
					t.Fatal("waited for a writer of the named pipe until SIGTERM")
				case <-time.After(3 * time.Second):
					cmd.Process.Kill()
					t.Fatal("waits for a writer of the named pipe and ignores SIGTERM")
				}
			}
		})
	}
}
