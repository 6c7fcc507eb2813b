package redis_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cachekit/cachekit"
	"github.com/cachekit/cachekit/internal/testserver"
	"github.com/cachekit/cachekit/redis"
)

// A server with a password: the right one works (with and without a user
// name), a wrong one fails New with a clear error and no hang.
func TestAuth(t *testing.T) {
	t.Parallel()
	srv := testserver.StartRedis(t, "--requirepass", "s3cret")
	ctx := context.Background()
	for _, o := range []redis.Options{
		{Password: "s3cret"},
		{Username: "default", Password: "s3cret"},
	} {
		s := openPrivate(t, []string{srv.Addr}, o)
		if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
			t.Fatalf("%+v: Set: %v", o, err)
		}
		if v, err := s.Get(ctx, "k"); err != nil || string(v) != "v" {
			t.Fatalf("%+v: Get: %q, %v", o, v, err)
		}
	}
	start := time.Now()
	s, err := redis.New(ctx, redis.Options{Addrs: []string{srv.Addr}, Password: "wrong", DialTimeout: 2 * time.Second})
	if err == nil {
		s.Close()
		t.Fatal("New with a wrong password succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a wrong password took %v to fail", d)
	}
	t.Logf("wrong password: %v", err)
}

// A server listening with TLS: Options.TLS connects, tracking included; a
// client that does not trust the server's certificate fails.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t)
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsPort := testserver.FreePort(t)
	testserver.StartRedis(t, "--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", cert, "--tls-key-file", key,
		"--tls-ca-cert-file", cert, "--tls-auth-clients", "no")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
	ctx := context.Background()
	s := openPrivate(t, []string{addr}, redis.Options{TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
	got := make(chan []string, 8)
	stop, err := s.Subscribe(ctx, func(keys []string) { got <- keys })
	if err != nil {
		t.Fatalf("Subscribe over TLS: %v", err)
	}
	defer stop()
	if err := s.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get over TLS: %q, %v", v, err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no invalidation over TLS")
	}
	_, err = redis.New(ctx, redis.Options{Addrs: []string{addr}, TLS: &tls.Config{ServerName: "127.0.0.1"}, DialTimeout: 2 * time.Second})
	if err == nil || !errors.Is(err, cachekit.ErrUnavailable) {
		t.Fatalf("untrusted certificate: %v, want ErrUnavailable", err)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cachekit test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), pool
}
