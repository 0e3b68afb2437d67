package webhook_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/egress/egresstest"
)

// receiver is an httptest server that counts its requests.
type receiver struct {
	*httptest.Server
	hits atomic.Int64
}

func newReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		h(w, req)
	}))
	r.Config.ErrorLog = log.New(io.Discard, "", 0)
	r.Start()
	t.Cleanup(r.Close)
	return r
}

// newTLSReceiver is newReceiver over TLS with cert.
func newTLSReceiver(t *testing.T, cert tls.Certificate, h http.HandlerFunc) *receiver {
	t.Helper()
	return newTLSReceiverConfig(t, &tls.Config{Certificates: []tls.Certificate{cert}}, h)
}

// newTLSReceiverConfig is newReceiver over TLS configured by cfg.
func newTLSReceiverConfig(t *testing.T, cfg *tls.Config, h http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		h(w, req)
	}))
	r.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	r.TLS = cfg
	r.StartTLS()
	t.Cleanup(r.Close)
	return r
}

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }

// port is the receiver's port.
func (r *receiver) port() string {
	_, port, _ := net.SplitHostPort(r.Listener.Addr().String())
	return port
}

// selfSigned returns a self-signed certificate for the given names and IP
// addresses, valid from notBefore to notAfter, and a pool trusting it.
func selfSigned(t *testing.T, notBefore, notAfter time.Time, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "webhook test " + strings.Join(names, " ")},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// fakeDNS is egresstest.FakeDNS.
func fakeDNS(t *testing.T, records map[string][]netip.Addr) *net.Resolver {
	t.Helper()
	return egresstest.FakeDNS(t, records)
}
