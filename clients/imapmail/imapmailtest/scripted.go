package imapmailtest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// LineServer is a scripted mail server on 127.0.0.1 for what real servers
// will not do on demand: on each connection it sends greeting, then
// answers each line it reads with answer(line), and closes when answer
// returns "". It returns the host and port to put in the settings.
func LineServer(t testing.TB, greeting string, answer func(line string) string) (string, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(30 * time.Second))
				conn.Write([]byte(greeting + "\r\n"))
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					out := answer(strings.TrimRight(line, "\r\n"))
					if out == "" {
						return
					}
					conn.Write([]byte(out))
				}
			}()
		}
	}()
	return "127.0.0.1", l.Addr().(*net.TCPAddr).Port
}

// IMAPRefusing answers an IMAP client for LineServer: CAPABILITY as an
// IMAP4rev1 server, LOGIN with NO [AUTHENTICATIONFAILED] and reason,
// anything else with BAD and reason.
func IMAPRefusing(reason string) func(line string) string {
	return func(line string) string {
		tag, rest, _ := strings.Cut(line, " ")
		cmd, _, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(cmd) {
		case "CAPABILITY":
			return "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + " OK done\r\n"
		case "LOGIN":
			return tag + " NO [AUTHENTICATIONFAILED] " + reason + "\r\n"
		case "LOGOUT":
			return "* BYE " + reason + "\r\n" + tag + " OK bye\r\n"
		}
		return tag + " BAD " + reason + "\r\n"
	}
}

// SMTPRefusing answers an SMTP client for LineServer: EHLO offering AUTH
// PLAIN and LOGIN, AUTH refused with 535 and reason, anything else 500
// with reason.
func SMTPRefusing(reason string) func(line string) string {
	return func(line string) string {
		cmd, _, _ := strings.Cut(line, " ")
		switch strings.ToUpper(cmd) {
		case "EHLO":
			return "250-" + reason + "\r\n250 AUTH PLAIN LOGIN\r\n"
		case "AUTH":
			return "535 5.7.8 " + reason + "\r\n"
		case "QUIT":
			return "221 2.0.0 " + reason + "\r\n"
		}
		return "500 5.5.2 " + reason + "\r\n"
	}
}
