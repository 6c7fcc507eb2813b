package testserver_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cachekit/internal/testserver"
)

// These tests talk to each server with the standard library only, so that
// a broken server setup is told apart from a broken client library.

// dial connects to addr; every read and write on the connection must finish
// within 10 seconds.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	return c, bufio.NewReader(c)
}

// testKey returns a key owned by this test: its name plus a random suffix.
func testKey(t *testing.T) string {
	return "cachekit-test:" + t.Name() + ":" + rand.Text()
}

// readLine reads one CRLF-terminated line and returns it without the CRLF.
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q so far)", err, line)
	}
	return strings.TrimSuffix(line, "\r\n")
}

// redisNil is what redisDo returns for a nil bulk string.
const redisNil = "(nil)"

// redisDo sends a command as a RESP array of bulk strings and returns the
// reply: the text of a simple string or integer, the contents of a bulk
// string, or redisNil. An error reply fails t.
func redisDo(t *testing.T, c net.Conn, r *bufio.Reader, args ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatalf("%s: write: %v", args[0], err)
	}
	line := readLine(t, r)
	if line == "" {
		t.Fatalf("%s: empty reply line", args[0])
	}
	switch line[0] {
	case '+', ':':
		return line[1:]
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			t.Fatalf("%s: bad bulk length in %q", args[0], line)
		}
		if n < 0 {
			return redisNil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatalf("%s: read bulk: %v", args[0], err)
		}
		return string(buf[:n])
	case '-':
		t.Fatalf("%s: server error: %s", args[0], line[1:])
	default:
		t.Fatalf("%s: unexpected reply %q", args[0], line)
	}
	return ""
}

func TestRedis(t *testing.T) {
	t.Parallel()
	c, r := dial(t, testserver.Redis(t))

	if got := redisDo(t, c, r, "PING"); got != "PONG" {
		t.Fatalf("PING: got %q, want %q", got, "PONG")
	}
	key, val := testKey(t), "value "+rand.Text()
	t.Cleanup(func() { redisDo(t, c, r, "DEL", key) })
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"SET", key, val, "EX", "60"}, "OK"},
		{[]string{"GET", key}, val},
		{[]string{"DEL", key}, "1"},
		{[]string{"GET", key}, redisNil},
	}
	for _, s := range steps {
		if got := redisDo(t, c, r, s.args...); got != s.want {
			t.Fatalf("%s: got %q, want %q", s.args[0], got, s.want)
		}
	}
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	for _, addr := range testserver.RedisCluster(t) {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			c, r := dial(t, addr)
			info := redisDo(t, c, r, "CLUSTER", "INFO")
			if !strings.Contains(info, "cluster_state:ok\r\n") {
				t.Fatalf("CLUSTER INFO: got %q, want cluster_state:ok", info)
			}
		})
	}
}

// memcachedDo writes a memcached command and returns the next lines of
// the reply joined by newlines, without their CRLF.
func memcachedDo(t *testing.T, c net.Conn, r *bufio.Reader, cmd string, lines int) string {
	t.Helper()
	if _, err := io.WriteString(c, cmd); err != nil {
		t.Fatalf("write %q: %v", cmd, err)
	}
	got := make([]string, lines)
	for i := range got {
		got[i] = readLine(t, r)
	}
	return strings.Join(got, "\n")
}

func TestMemcached(t *testing.T) {
	t.Parallel()
	c, r := dial(t, testserver.Memcached(t))
	do := func(cmd string, lines int) string {
		t.Helper()
		return memcachedDo(t, c, r, cmd, lines)
	}

	if got := do("version\r\n", 1); !strings.HasPrefix(got, "VERSION ") {
		t.Fatalf("version: got %q, want VERSION ...", got)
	}
	key, val := testKey(t), rand.Text()
	t.Cleanup(func() { do("delete "+key+" noreply\r\n", 0) })
	steps := []struct {
		cmd   string
		lines int
		want  string
	}{
		{fmt.Sprintf("set %s 0 60 %d\r\n%s\r\n", key, len(val), val), 1, "STORED"},
		{"get " + key + "\r\n", 3, fmt.Sprintf("VALUE %s 0 %d\n%s\nEND", key, len(val), val)},
		{"delete " + key + "\r\n", 1, "DELETED"},
		{"get " + key + "\r\n", 1, "END"},
	}
	for _, s := range steps {
		if got := do(s.cmd, s.lines); got != s.want {
			t.Fatalf("%q: got %q, want %q", s.cmd, got, s.want)
		}
	}
}

// TestMemcachedPool checks that every server of the pool answers and that
// they are distinct servers: a key set on one is absent from the others.
func TestMemcachedPool(t *testing.T) {
	t.Parallel()
	addrs := testserver.MemcachedPool(t)
	type server struct {
		c net.Conn
		r *bufio.Reader
	}
	servers := make([]server, len(addrs))
	for i, addr := range addrs {
		c, r := dial(t, addr)
		servers[i] = server{c, r}
		if got := memcachedDo(t, c, r, "version\r\n", 1); !strings.HasPrefix(got, "VERSION ") {
			t.Fatalf("%s: version: got %q, want VERSION ...", addr, got)
		}
	}
	key, val := testKey(t), rand.Text()
	for i, s := range servers {
		t.Cleanup(func() { memcachedDo(t, s.c, s.r, "delete "+key+" noreply\r\n", 0) })
		set := fmt.Sprintf("set %s 0 60 %d\r\n%s-%d\r\n", key, len(val)+1+len(strconv.Itoa(i)), val, i)
		if got := memcachedDo(t, s.c, s.r, set, 1); got != "STORED" {
			t.Fatalf("%s: set: got %q, want STORED", addrs[i], got)
		}
	}
	for i, s := range servers {
		want := fmt.Sprintf("VALUE %s 0 %d\n%s-%d\nEND", key, len(val)+1+len(strconv.Itoa(i)), val, i)
		if got := memcachedDo(t, s.c, s.r, "get "+key+"\r\n", 3); got != want {
			t.Fatalf("%s: get: got %q, want %q (are two addresses the same server?)", addrs[i], got, want)
		}
	}
}

// pgSend writes one frontend message: its type byte (none for the startup
// message), its length and body.
func pgSend(t *testing.T, c net.Conn, typ byte, body []byte) {
	t.Helper()
	var msg []byte
	if typ != 0 {
		msg = append(msg, typ)
	}
	msg = binary.BigEndian.AppendUint32(msg, uint32(4+len(body)))
	if _, err := c.Write(append(msg, body...)); err != nil {
		t.Fatalf("write %q message: %v", typ, err)
	}
}

// pgRead reads one backend message. An ErrorResponse fails t.
func pgRead(t *testing.T, r *bufio.Reader) (byte, []byte) {
	t.Helper()
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		t.Fatalf("read message header: %v", err)
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n < 4 || n > 1<<20 {
		t.Fatalf("message %q: bad length %d", head[0], n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("read message %q: %v", head[0], err)
	}
	if head[0] == 'E' {
		// Fields: a code byte and a NUL-terminated string each; S severity, C code, M message.
		var fields []string
		for f := range bytes.SplitSeq(bytes.TrimRight(body, "\x00"), []byte{0}) {
			if len(f) > 0 && bytes.IndexByte([]byte("SCM"), f[0]) >= 0 {
				fields = append(fields, string(f[1:]))
			}
		}
		t.Fatalf("server error: %s", strings.Join(fields, " "))
	}
	return head[0], body
}

// pgUntilReady reads messages up to ReadyForQuery and returns the DataRows
// seen meanwhile, NULL columns as "NULL".
func pgUntilReady(t *testing.T, r *bufio.Reader) [][]string {
	t.Helper()
	var rows [][]string
	for {
		typ, body := pgRead(t, r)
		switch typ {
		case 'Z':
			return rows
		case 'D':
			var row []string
			ncol, rest := binary.BigEndian.Uint16(body), body[2:]
			for range ncol {
				n := int32(binary.BigEndian.Uint32(rest))
				rest = rest[4:]
				if n < 0 {
					row = append(row, "NULL")
					continue
				}
				row = append(row, string(rest[:n]))
				rest = rest[n:]
			}
			rows = append(rows, row)
		}
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	dsn := testserver.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s=%q: want a postgres:// URL (err %v)", testserver.EnvPostgres, dsn, err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "5432")
	}
	user := u.User.Username()
	if user == "" {
		user = "postgres"
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = user
	}
	c, r := dial(t, addr)

	// StartupMessage: protocol 3.0, then name/value pairs ended by an empty name.
	body := binary.BigEndian.AppendUint32(nil, 3<<16)
	for _, s := range []string{"user", user, "database", db, ""} {
		body = append(append(body, s...), 0)
	}
	pgSend(t, c, 0, body)
	typ, auth := pgRead(t, r)
	if typ != 'R' || len(auth) < 4 || binary.BigEndian.Uint32(auth) != 0 {
		t.Fatalf("after startup: got message %q %v, want AuthenticationOk (R 0): the test server trusts local users", typ, auth)
	}
	pgUntilReady(t, r)

	pgSend(t, c, 'Q', []byte("SHOW wal_level\x00"))
	rows := pgUntilReady(t, r)
	if len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] != "logical" {
		t.Fatalf("SHOW wal_level: got %q, want [[logical]]", rows)
	}
	pgSend(t, c, 'X', nil)
}
