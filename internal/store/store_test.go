package store

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestOpen(t *testing.T) {
	tests := []struct {
		url  string
		want string
	}{
		{"redis://127.0.0.1:6379/0", "*redis.Client"},
		{"rediss://user:pw@example.com:6380/1", "*redis.Client"},
		{"redis+cluster://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", "*redis.ClusterClient"},
		{"redis+sentinel://127.0.0.1:26379?master_name=mymaster", "*redis.Client"},
		{"127.0.0.1:6379", ""},
		{"http://127.0.0.1:6379", ""},
		{"redis+cluster://127.0.0.1:7000?bogus=1", ""},
	}
	for _, tt := range tests {
		c, err := Open(tt.url)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Open(%q) accepted", tt.url)
				c.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", tt.url, err)
			continue
		}
		var got string
		switch c.(type) {
		case *redis.Client:
			got = "*redis.Client"
		case *redis.ClusterClient:
			got = "*redis.ClusterClient"
		}
		if got != tt.want {
			t.Errorf("Open(%q) = %s, want %s", tt.url, got, tt.want)
		}
		c.Close()
	}
}

func TestKeysShareTheVirtualNumbersSlot(t *testing.T) {
	x, p := "+8617000000000", "+8613800000001"
	for _, k := range []string{NumberKey(x), RouteKey(x, p), BindingKey(x, "id"), ActiveKey(x)} {
		if tag := hashTag(k); tag != x {
			t.Errorf("key %q has hash tag %q, want %q", k, tag, x)
		}
	}
}

// hashTag returns the part of k Redis Cluster hashes.
func hashTag(k string) string {
	for i := 0; i < len(k); i++ {
		if k[i] == '{' {
			for j := i + 1; j < len(k); j++ {
				if k[j] == '}' {
					return k[i+1 : j]
				}
			}
		}
	}
	return k
}
