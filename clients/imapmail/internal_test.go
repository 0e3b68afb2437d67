package imapmail

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/helpdeskflow/helpdeskflow/clients/egress"
)

// TestDialerControl checks the dial-time rules on public addresses
// without dialling them: Control is called directly, as the dialer would
// before connecting.
func TestDialerControl(t *testing.T) {
	s := Settings{IMAPHost: "mail.example.test", IMAPPort: 143, IMAPSecurity: SecurityNone,
		SMTPHost: "smtp.example.test", SMTPPort: 8025, SMTPSecurity: SecurityStartTLS, Username: "support@example.test", Password: "x"}
	c := New(s, WithPolicy(egress.Policy{AllowLoopback: true}))
	if c.invalid != nil {
		t.Fatalf("names are judged when dialled, but New refused: %v", c.invalid)
	}
	for _, tc := range []struct {
		protocol, addr string
		want           error
	}{
		{protoIMAP, "8.8.8.8:143", ErrPlaintextRefused},
		{protoIMAP, "[2606:4700::1111]:143", ErrPlaintextRefused},
		{protoIMAP, "10.0.0.1:143", egress.ErrBlockedAddress},
		{protoIMAP, "127.0.0.1:143", nil},
		{protoSMTP, "8.8.8.8:8025", ErrPortRefused},
		{protoSMTP, "127.0.0.1:8025", nil},
		{protoSMTP, "169.254.169.254:8025", egress.ErrBlockedAddress},
	} {
		err := c.dialer(tc.protocol).Control("tcp", tc.addr, nil)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: Control(%s) = %v, want %v", tc.protocol, tc.addr, err, tc.want)
		}
	}

	// A public literal is judged at once: no plain text, no other port.
	s.IMAPHost, s.SMTPHost = "8.8.8.8", "8.8.4.4"
	c = New(s, WithPolicy(egress.Policy{AllowLoopback: true}))
	if !errors.Is(c.invalid, ErrPlaintextRefused) || !errors.Is(c.invalid, ErrPortRefused) || Classify(c.invalid) != ErrorTLS {
		t.Errorf("New with public literals = %v", c.invalid)
	}
}

// A server that greets with BYE, read by the client before anyone waits for
// the greeting (a busy machine): every wait answers with the refusal, never
// with imapclient's "connection closed before greeting" (its WaitGreeting
// picks either at random once both are ready).
func TestWaitGreeting_RefusalWinsOnceTheReaderStopped(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		server.Write([]byte("* BYE go away\r\n"))
		io.Copy(io.Discard, server)
	}()
	ic := imapclient.New(client, nil)
	defer ic.Close()
	deadline := time.Now().Add(10 * time.Second)
	for ic.State() != imap.ConnStateLogout {
		if time.Now().After(deadline) {
			t.Fatal("the client never read the BYE greeting")
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 200 {
		err := waitGreeting(ic)
		if err == nil || !strings.Contains(err.Error(), "go away") {
			t.Fatalf("wait %d: %v, want the server's BYE", i, err)
		}
	}
}
