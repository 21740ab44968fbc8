package worker

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, l.Addr().(*net.TCPAddr).Port
}

// A server that accepts and never greets must not hold the outbox: the
// delivery ends when its context does.
func TestSMTPSendGivesUpWithItsContext(t *testing.T) {
	l, port := listen(t)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	m := &SMTPMailer{Host: "127.0.0.1", Port: port, From: "sso@example.com"}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := m.Send(ctx, "alice@example.com", "hi", "body"); err == nil {
		t.Fatal("a silent server accepted the mail")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Send took %v after its context ended", took)
	}
}

// TestSMTPSendDelivers speaks SMTP with a minimal in-test server and checks
// the envelope and the headers that reach it.
func TestSMTPSendDelivers(t *testing.T) {
	l, port := listen(t)
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, w := bufio.NewReader(c), c
		say := func(s string) { _, _ = w.Write([]byte(s + "\r\n")) }
		say("220 test ESMTP")
		var log strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			log.WriteString(strings.TrimSpace(line) + "\n")
			switch {
			case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
				say("250 test")
			case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"):
				say("250 ok")
			case cmd == "DATA":
				say("354 go on")
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
					log.WriteString(l)
				}
				say("250 queued")
			case cmd == "QUIT":
				say("221 bye")
				got <- log.String()
				return
			default:
				say("502 no")
			}
		}
	}()
	m := &SMTPMailer{Host: "127.0.0.1", Port: port, From: "Gatehouse <sso@example.com>"}
	if err := m.Send(context.Background(), "alice@example.com", "Sign-in link\r\nBcc: evil@example.com", "hello"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	select {
	case conv := <-got:
		for _, want := range []string{"MAIL FROM:<sso@example.com>", "RCPT TO:<alice@example.com>", "Subject: Sign-in link  Bcc: evil@example.com", "hello"} {
			if !strings.Contains(conv, want) {
				t.Errorf("conversation lacks %q:\n%s", want, conv)
			}
		}
		if strings.Contains(conv, "\nBcc:") {
			t.Errorf("a header was injected through the subject:\n%s", conv)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
}
