package testserver_test

import (
	"net"
	"testing"
	"time"

	"github.com/cachekit/cachekit/internal/testserver"
)

func TestProcKillRestart(t *testing.T) {
	for name, start := range map[string]func(testing.TB, ...string) *testserver.Proc{
		"redis":     testserver.StartRedis,
		"memcached": testserver.StartMemcached,
	} {
		t.Run(name, func(t *testing.T) {
			p := start(t)
			c, err := net.DialTimeout("tcp", p.Addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			p.Kill()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatal("connection to a killed server still reads")
			}
			c.Close()
			if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
				c.Close()
				t.Fatal("killed server still accepts connections")
			}
			p.Start()
			c, err = net.DialTimeout("tcp", p.Addr, time.Second)
			if err != nil {
				t.Fatalf("restarted server: %v", err)
			}
			c.Close()
		})
	}
}

func TestProcStopResume(t *testing.T) {
	p := testserver.StartRedis(t)
	c, err := net.DialTimeout("tcp", p.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.Stop()
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	c.Write([]byte("PING\r\n"))
	if n, err := c.Read(make([]byte, 16)); err == nil {
		t.Fatalf("a stopped server answered (%d bytes)", n)
	}
	p.Resume()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, err := c.Read(buf) // the PING sent while stopped is answered now
	if err != nil || string(buf[:n]) != "+PONG\r\n" {
		t.Fatalf("after Resume: %q, %v", buf[:n], err)
	}
}
