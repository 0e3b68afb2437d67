// Package imapmailtest helps test imapmail (and its callers) against real
// servers: the private Dovecot IMAP server of scripts/services.sh (Env,
// NewMailbox, Append, Recreate, Flags) and an SMTP receiver built on
// github.com/emersion/go-smtp (NewSMTPServer) that records what it receives
// and can deliver it into a Dovecot mailbox.
//
// Dovecot must be running: `make test` starts it; by hand,
//
//	scripts/services.sh start test && eval "$(scripts/services.sh env test)"
package imapmailtest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
	"github.com/helpdeskflow/helpdeskflow/clients/imapmail"
)

// Environment is the test IMAP server, from the HDF_TEST_IMAP_* variables
// that `scripts/services.sh env test` prints.
type Environment struct {
	// Addr is host:port of plain IMAP with STARTTLS (HDF_TEST_IMAP_ADDR).
	Addr string
	// TLSAddr is host:port of IMAP over implicit TLS (HDF_TEST_IMAPS_ADDR).
	TLSAddr string
	// CAFile is the PEM file of the server's certificate (HDF_TEST_IMAP_CA);
	// CAPEM its contents.
	CAFile string
	CAPEM  []byte
	// User and Password log in (HDF_TEST_IMAP_USER, HDF_TEST_IMAP_PASSWORD).
	User     string
	Password string
}

var envNames = []string{"HDF_TEST_IMAP_ADDR", "HDF_TEST_IMAPS_ADDR", "HDF_TEST_IMAP_CA", "HDF_TEST_IMAP_USER", "HDF_TEST_IMAP_PASSWORD"}

// Env returns the test IMAP server. When a variable is missing the test
// fails, saying how to start the server; only under -short does it skip.
func Env(t testing.TB) Environment {
	t.Helper()
	var missing []string
	vals := map[string]string{}
	for _, n := range envNames {
		vals[n] = os.Getenv(n)
		if vals[n] == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("%s not set: the tests need the private Dovecot IMAP server; run "+
			"`scripts/services.sh start test && eval \"$(scripts/services.sh env test)\"` (make test does both)",
			strings.Join(missing, ", "))
		if testing.Short() {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	e := Environment{
		Addr: vals["HDF_TEST_IMAP_ADDR"], TLSAddr: vals["HDF_TEST_IMAPS_ADDR"], CAFile: vals["HDF_TEST_IMAP_CA"],
		User: vals["HDF_TEST_IMAP_USER"], Password: vals["HDF_TEST_IMAP_PASSWORD"],
	}
	pem, err := os.ReadFile(e.CAFile)
	if err != nil {
		t.Fatalf("HDF_TEST_IMAP_CA: %v (run scripts/services.sh start test)", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		t.Fatalf("HDF_TEST_IMAP_CA: %s holds no PEM certificate", e.CAFile)
	}
	e.CAPEM = pem
	return e
}

// Settings returns settings for the test user on the IMAP server, with
// the given security (SecurityTLS uses TLSAddr, the others Addr) and
// mailbox. The SMTP fields point at a placeholder (127.0.0.1:1, none):
// SMTPServer.Apply fills in a real one.
func (e Environment) Settings(security, mailbox string) imapmail.Settings {
	addr := e.Addr
	if security == imapmail.SecurityTLS {
		addr = e.TLSAddr
	}
	host, port := splitAddr(addr)
	return imapmail.Settings{
		IMAPHost: host, IMAPPort: port, IMAPSecurity: security,
		SMTPHost: "127.0.0.1", SMTPPort: 1, SMTPSecurity: imapmail.SecurityNone,
		Username: e.User, Password: e.Password, Mailbox: mailbox,
	}
}

func splitAddr(addr string) (string, int) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		panic(fmt.Sprintf("imapmailtest: bad address %q: %v", addr, err))
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		panic(fmt.Sprintf("imapmailtest: bad port in %q", addr))
	}
	return host, port
}

// AllowLoopback is the client option the test servers need: they listen
// on loopback, which the default outbound address policy refuses.
var AllowLoopback = imapmail.WithPolicy(egress.Policy{AllowLoopback: true})

// TLSConfig returns a TLS configuration trusting the given PEM
// certificates (Environment.CAPEM, SMTPServer.CAPEM) and nothing else.
func TLSConfig(pems ...[]byte) *tls.Config {
	pool := x509.NewCertPool()
	for _, p := range pems {
		pool.AppendCertsFromPEM(p)
	}
	return &tls.Config{RootCAs: pool}
}

// connect logs in to the test server as the test user (plain IMAP: it is
// loopback).
func connect(e Environment) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(e.Addr, &imapclient.Options{Dialer: &net.Dialer{Timeout: 10 * time.Second}})
	if err != nil {
		return nil, fmt.Errorf("imapmailtest: connecting to %s (is Dovecot running? scripts/services.sh start test): %w", e.Addr, err)
	}
	if err := c.Login(e.User, e.Password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imapmailtest: login to %s as %s: %w", e.Addr, e.User, err)
	}
	return c, nil
}

// with runs f on a fresh logged-in connection.
func with(e Environment, f func(c *imapclient.Client) error) error {
	c, err := connect(e)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := f(c); err != nil {
		return err
	}
	return c.Logout().Wait()
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9]+`)

// NewMailbox creates a mailbox of its own for the test (named after it,
// plus a random suffix, so parallel tests and runs never collide), deletes
// it when the test ends, and returns its name.
func NewMailbox(t testing.TB, e Environment) string {
	t.Helper()
	name := strings.Trim(unsafeChars.ReplaceAllString(t.Name(), "-"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	var mailbox string
	for attempt := 1; ; attempt++ {
		var suffix [4]byte
		_, _ = rand.Read(suffix[:])
		mailbox = "hdftest-" + name + "-" + hex.EncodeToString(suffix[:])
		err := with(e, func(c *imapclient.Client) error { return c.Create(mailbox, nil).Wait() })
		if err == nil {
			break
		}
		// A random name cannot exist yet: ALREADYEXISTS is Dovecot racing
		// on a fresh mail store (two first CREATEs at once). Another name.
		if attempt == 3 || !strings.Contains(err.Error(), "ALREADYEXISTS") {
			t.Fatalf("imapmailtest: creating mailbox %s: %v", mailbox, err)
		}
	}
	t.Cleanup(func() {
		if err := with(e, func(c *imapclient.Client) error { return c.Delete(mailbox).Wait() }); err != nil {
			t.Errorf("imapmailtest: deleting mailbox %s: %v", mailbox, err)
		}
	})
	return mailbox
}

// Append stores raw in the mailbox with the given INTERNALDATE (now when
// zero) and flags (such as `\Seen`), and returns its UID.
func Append(t testing.TB, e Environment, mailbox string, raw []byte, date time.Time, flags ...string) uint32 {
	t.Helper()
	uid, err := appendMessage(e, mailbox, raw, date, flags...)
	if err != nil {
		t.Fatalf("imapmailtest: %v", err)
	}
	return uid
}

func appendMessage(e Environment, mailbox string, raw []byte, date time.Time, flags ...string) (uint32, error) {
	opts := &imap.AppendOptions{Time: date}
	for _, f := range flags {
		opts.Flags = append(opts.Flags, imap.Flag(f))
	}
	var uid uint32
	err := with(e, func(c *imapclient.Client) error {
		cmd := c.Append(mailbox, int64(len(raw)), opts)
		if _, err := cmd.Write(raw); err != nil {
			cmd.Close()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		data, err := cmd.Wait()
		if err != nil {
			return err
		}
		uid = uint32(data.UID)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("appending to %s: %w", mailbox, err)
	}
	return uid, nil
}

// Recreate deletes the mailbox and creates it again, empty and with a new
// UIDVALIDITY, which it returns.
func Recreate(t testing.TB, e Environment, mailbox string) uint32 {
	t.Helper()
	before := UIDValidity(t, e, mailbox)
	err := with(e, func(c *imapclient.Client) error {
		if err := c.Delete(mailbox).Wait(); err != nil {
			return err
		}
		return c.Create(mailbox, nil).Wait()
	})
	if err != nil {
		t.Fatalf("imapmailtest: recreating %s: %v", mailbox, err)
	}
	after := UIDValidity(t, e, mailbox)
	if after == before {
		t.Fatalf("imapmailtest: recreating %s kept UIDVALIDITY %d", mailbox, after)
	}
	return after
}

// UIDValidity returns the mailbox's UIDVALIDITY.
func UIDValidity(t testing.TB, e Environment, mailbox string) uint32 {
	t.Helper()
	var v uint32
	err := with(e, func(c *imapclient.Client) error {
		data, err := c.Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			return err
		}
		v = data.UIDValidity
		return nil
	})
	if err != nil {
		t.Fatalf("imapmailtest: STATUS %s: %v", mailbox, err)
	}
	return v
}

// Flags returns the flags of the message with the given UID (read with
// EXAMINE, which changes none).
func Flags(t testing.TB, e Environment, mailbox string, uid uint32) []string {
	t.Helper()
	var flags []string
	err := with(e, func(c *imapclient.Client) error {
		if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return err
		}
		msgs, err := c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{Flags: true}).Collect()
		if err != nil {
			return err
		}
		if len(msgs) != 1 {
			return fmt.Errorf("no message with UID %d", uid)
		}
		for _, f := range msgs[0].Flags {
			flags = append(flags, string(f))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("imapmailtest: flags of %s UID %d: %v", mailbox, uid, err)
	}
	return flags
}
