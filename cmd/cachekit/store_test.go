package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cachekit/cachekit/disk"
	"github.com/cachekit/cachekit/memcached"
	"github.com/cachekit/cachekit/redis"
)

func TestParseStoreURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want storeSpec
	}{
		{"redis://127.0.0.1:6380", storeSpec{kind: "redis", redis: redis.Options{Addrs: []string{"127.0.0.1:6380"}}}},
		{"redis://cache.local", storeSpec{kind: "redis", redis: redis.Options{Addrs: []string{"cache.local:6379"}}}},
		{"redis://[::1]", storeSpec{kind: "redis", redis: redis.Options{Addrs: []string{"[::1]:6379"}}}},
		{"redis://[::1]:7000/3?prefix=app:", storeSpec{kind: "redis", redis: redis.Options{Addrs: []string{"[::1]:7000"}, DB: 3, Prefix: "app:"}}},
		{"redis://u:p%40ss@h:1/", storeSpec{kind: "redis", redis: redis.Options{Addrs: []string{"h:1"}, Username: "u", Password: "p@ss"}}},
		{"redis://:secret@h", storeSpec{kind: "redis", redis: redis.Options{Addrs: []string{"h:6379"}, Password: "secret"}}},
		{"redis+cluster://a:1,b:2,c?prefix=x:", storeSpec{kind: "redis+cluster", redis: redis.Options{Addrs: []string{"a:1", "b:2", "c:6379"}, Prefix: "x:"}}},
		{"memcached://m1,m2:11212?prefix=app", storeSpec{kind: "memcached", memcached: memcached.Options{Addrs: []string{"m1:11211", "m2:11212"}, Prefix: "app"}}},
		{"disk:///var/cache/app/", storeSpec{kind: "disk", disk: disk.Options{Dir: "/var/cache/app", CullLimit: -1}}},
		{"disk://localhost/var/cache/app", storeSpec{kind: "disk", disk: disk.Options{Dir: "/var/cache/app", CullLimit: -1}}},
		{"disk:cache/app", storeSpec{kind: "disk", disk: disk.Options{Dir: "cache/app", CullLimit: -1}}},
	}
	for _, tc := range tests {
		got, err := parseStoreURL(tc.url)
		if err != nil {
			t.Errorf("parseStoreURL(%q): %v", tc.url, err)
			continue
		}
		if !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("parseStoreURL(%q) = %+v, want %+v", tc.url, *got, tc.want)
		}
	}

	bad := []struct{ url, wantErr string }{
		{"", "-store is required"},
		{"127.0.0.1:6379", "-store"},
		{"cache.local", "missing scheme"},
		{"mysql://h/db", `unknown scheme "mysql"`},
		{"redis://", "no host"},
		{"redis://a,b", "redis+cluster://"},
		{"redis://a,,b", "empty host"},
		{"redis://h:0", "bad port"},
		{"redis://h/x", "database number"},
		{"redis+cluster://h/1", "only database 0"},
		{"redis+cluster://u:hunter2@a:1,b/1", "redis+cluster://u:xxxxx@a:1,b/1"},
		{"redis+cluster://a:1,b:x", `bad port in "b:x"`},
		{"redis://h?db=1", `unknown parameter "db"`},
		{"redis://u:hunter2@h?x=1", "u:xxxxx@h"}, // the password is not shown
		{"redis://h#frag", "fragment"},
		{"memcached://u@h", "no user"},
		{"memcached://h/path", "unexpected path"},
		{"disk://host/dir", "names no host"},
		{"disk://", "no directory"},
		{"disk:///d?prefix=p", "no key prefix"},
	}
	for _, tc := range bad {
		got, err := parseStoreURL(tc.url)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("parseStoreURL(%q) = %+v, %v; want a usage error", tc.url, got, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("parseStoreURL(%q): %q, want it to contain %q", tc.url, err, tc.wantErr)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parseStoreURL(%q): %q shows the password", tc.url, err)
		}
	}
}
