package imapmailtest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The second user of the test IMAP server (scripts/services.sh): a
// customer's mailbox in the mail loop's tests.
const (
	SecondUser     = "second@example.test"
	SecondPassword = "app-password-2"
)

// As returns the environment logged in as another user of the same server.
func (e Environment) As(user, password string) Environment {
	e.User, e.Password = user, password
	return e
}

// Loop is the test profile's local SMTP server (scripts/services.sh's
// Postfix), which delivers mail for example.test into the test IMAP
// server's mailboxes: user+folder@example.test lands in user's folder
// `folder`, made if missing.
type Loop struct {
	// Addr is host:port (HDF_TEST_SMTP_ADDR): STARTTLS offered, with a
	// certificate Environment.CAPEM trusts; AUTH with the IMAP users, or
	// none (it is on loopback).
	Addr string
	Host string
	Port int
}

// SMTPEnv returns the local SMTP server of the mail loop. When
// HDF_TEST_SMTP_ADDR is missing the test fails, saying how to start it;
// only under -short does it skip.
func SMTPEnv(t testing.TB) Loop {
	t.Helper()
	addr := os.Getenv("HDF_TEST_SMTP_ADDR")
	if addr == "" {
		msg := "HDF_TEST_SMTP_ADDR not set: the mail loop's tests need the private Postfix; run " +
			"`scripts/services.sh start test && eval \"$(scripts/services.sh env test)\"` (make test does both)"
		if testing.Short() {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	host, port := splitAddr(addr)
	return Loop{Addr: addr, Host: host, Port: port}
}

// Address is user's address with mailbox as its detail
// (agent+folder@example.test): mail sent to it through the Loop lands in
// that folder of user's mailbox.
func Address(user, mailbox string) string {
	local, domain, _ := strings.Cut(user, "@")
	return local + "+" + mailbox + "@" + domain
}

// Messages returns the messages in the mailbox, whole, in UID order;
// none while the mailbox does not exist (the loop makes it with the first
// message). It does not fail the test, so it can be polled.
func Messages(e Environment, mailbox string) ([][]byte, error) {
	var out [][]byte
	err := with(e, func(c *imapclient.Client) error {
		if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
				return nil
			}
			return err
		}
		msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			for _, body := range m.BodySection {
				out = append(out, body.Bytes)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("imapmailtest: reading %s as %s: %w", mailbox, e.User, err)
	}
	return out, nil
}

// DeleteOnCleanup deletes the mailbox (of e's user) when the test ends,
// if it exists then.
func DeleteOnCleanup(t testing.TB, e Environment, mailbox string) {
	t.Cleanup(func() {
		err := with(e, func(c *imapclient.Client) error { return c.Delete(mailbox).Wait() })
		var ie *imap.Error
		if err != nil && !(errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent) {
			t.Errorf("imapmailtest: deleting mailbox %s of %s: %v", mailbox, e.User, err)
		}
	})
}
