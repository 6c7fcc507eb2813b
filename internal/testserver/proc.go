package testserver

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a private server process that one test starts, kills and restarts
// to prove fault behaviour, so that the shared servers of `make test` stay
// up for every other test. It listens on 127.0.0.1 only, on a port picked
// at start and kept across restarts; t.Cleanup kills it.
type Proc struct {
	t    testing.TB
	name string   // binary
	args []string // full argument list, port included
	Addr string   // 127.0.0.1:port
	Port int

	mu  sync.Mutex
	cmd *exec.Cmd
	log string
}

// StartRedis starts a private redis-server (no persistence, RESP3 capable)
// on a free loopback port. extra are more "--name value" arguments. It skips
// t when redis-server is not installed, or fails it if [Required].
func StartRedis(t testing.TB, extra ...string) *Proc {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "no"}
	return start(t, "redis-server", append(args, extra...), port, filepath.Join(dir, "redis.log"))
}

// StartMemcached starts a private memcached on a free loopback port (UDP
// off, 64 MiB). extra are more arguments.
func StartMemcached(t testing.TB, extra ...string) *Proc {
	t.Helper()
	port := freePort(t)
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "64"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	return start(t, "memcached", append(args, extra...), port, filepath.Join(t.TempDir(), "memcached.log"))
}

func start(t testing.TB, name string, args []string, port int, log string) *Proc {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if Required() {
			t.Fatalf("%s not installed (make test installs it): %v", name, err)
		}
		t.Skipf("%s not installed; make test installs it", name)
	}
	p := &Proc{t: t, name: name, args: args, Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: log}
	p.Start()
	t.Cleanup(p.Kill)
	return p
}

// Start (re)starts the process on its port and waits until it accepts
// connections. It fails the test if the server does not come up in 10 s.
func (p *Proc) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.t.Fatalf("%s on %s already running", p.name, p.Addr)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(p.name, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			ok := p.ping(c)
			c.Close()
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			p.t.Fatalf("%s on %s did not come up: %v\n%s", p.name, p.Addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping checks the server answers (redis: PING, memcached: version).
func (p *Proc) ping(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(time.Second))
	cmd, want := "version\r\n", []string{"VERSION"}
	if p.name == "redis-server" {
		cmd, want = "PING\r\n", []string{"+PONG", "-NOAUTH"} // up, maybe with a password
	}
	if _, err := c.Write([]byte(cmd)); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return false
	}
	for _, w := range want {
		if strings.HasPrefix(line, w) {
			return true
		}
	}
	return false
}

// Kill stops the process with SIGKILL (no shutdown handshake: clients see
// the connection drop) and waits for it. Safe to call when not running.
func (p *Proc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p.cmd = nil
}

// Stop pauses the process with SIGSTOP: it keeps its connections open but
// answers nothing, as a slow or hung server does. It returns once the
// kernel shows the process stopped (up to 5 s). Resume undoes it.
func (p *Proc) Stop() {
	p.signal(syscall.SIGSTOP)
	p.mu.Lock()
	pid := 0
	if p.cmd != nil {
		pid = p.cmd.Process.Pid
	}
	p.mu.Unlock()
	if pid == 0 {
		return
	}
	stat := fmt.Sprintf("/proc/%d/stat", pid)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return // no procfs: best effort
		}
		// The state follows the command name in parentheses: "pid (comm) T ...".
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
	}
}

// Resume continues a process paused by Stop.
func (p *Proc) Resume() { p.signal(syscall.SIGCONT) }

func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.cmd.Process.Signal(sig)
	}
}

// Restart kills the process and starts it again on the same port.
func (p *Proc) Restart() {
	p.t.Helper()
	p.Kill()
	p.Start()
}

// FreePort returns a free loopback port at or below 55535, for a second
// listener of a private server (a Redis TLS port, for instance).
func FreePort(t testing.TB) int {
	t.Helper()
	return freePort(t)
}

// freePort asks the kernel for a free loopback port. Redis Cluster needs
// port+10000 free too, so ports stay at or below 55535.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port <= 55535 {
			return port
		}
	}
	t.Fatal(fmt.Errorf("no free loopback port at or below 55535"))
	return 0
}
