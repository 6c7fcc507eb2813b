package testserver_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cachekit/cachekit/internal/testserver"
)

func TestRedisClusterMoveSlot(t *testing.T) {
	t.Parallel()
	c := testserver.StartRedisCluster(t)
	if len(c.Addrs) != 3 {
		t.Fatalf("got %d nodes, want 3", len(c.Addrs))
	}
	const key = "cachekit-test:moveslot"
	slot := c.KeySlot(key)
	from := c.Owner(slot)
	if _, err := testserver.RedisDo(from, "SET", key, "v"); err != nil {
		t.Fatalf("SET on the owner: %v", err)
	}
	to := c.Addrs[0]
	if to == from {
		to = c.Addrs[1]
	}
	c.MoveSlot(slot, to)
	if got := c.Owner(slot); got != to {
		t.Fatalf("owner of slot %d after MoveSlot: got %s, want %s", slot, got, to)
	}
	if v, err := testserver.RedisDo(to, "GET", key); err != nil || v != "v" {
		t.Fatalf("GET on the new owner = %v, %v; want v", v, err)
	}
	_, err := testserver.RedisDo(from, "GET", key)
	var re testserver.RedisReplyError
	if !errors.As(err, &re) || !strings.HasPrefix(string(re), "MOVED") {
		t.Fatalf("GET on the old owner: got %v, want a MOVED redirection", err)
	}
}
