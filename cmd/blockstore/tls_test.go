package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "blockstore test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

func TestServeTLSWithTokens(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	t.Setenv("BLOCKSTORE_AUTH_TOKEN", "tls-write-token")
	s := startServer(t, "--data", filepath.Join(t.TempDir(), "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("server URL %s, want https", s.URL)
	}
	if strings.Contains(s.logs.String(), "tls-write-token") {
		t.Fatal("the token appears in the log")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/api/v1/collections", ""); code != 401 {
		t.Errorf("without a token over TLS: %d, want 401", code)
	}
	if code := get("/api/v1/collections", "tls-write-token"); code != 200 {
		t.Errorf("with the token over TLS: %d, want 200", code)
	}
	if code := get("/healthz", ""); code != 200 {
		t.Errorf("healthz without a token: %d, want 200", code)
	}
	// Plain http to the TLS port gets nothing useful.
	resp, err := http.Get("http" + strings.TrimPrefix(s.URL, "https") + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain http was served on the TLS port")
		}
	}
}

func TestExposureWarnings(t *testing.T) {
	loop := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8080}
	any := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	tests := []struct {
		addr        net.Addr
		tokens, tls bool
		want        string
	}{
		{loop, false, false, ""},
		{any, false, false, "without --auth-token"},
		{any, true, false, "without --tls-cert"},
		{any, true, true, ""},
	}
	for _, tt := range tests {
		got := strings.Join(exposureWarnings(tt.addr, tt.tokens, tt.tls), "; ")
		if (tt.want == "" && got != "") || !strings.Contains(got, tt.want) {
			t.Errorf("%v tokens=%v tls=%v: %q, want %q", tt.addr, tt.tokens, tt.tls, got, tt.want)
		}
	}
}
