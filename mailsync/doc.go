// Package mailsync turns connected mailboxes into tickets and sends agents'
// replies back through them.
//
// The Worker syncs each active mailbox connection on its interval (Gmail
// every 20 seconds, through its API, incrementally by history id with a
// bounded list as fallback; Outlook every 60 seconds over IMAP, by UID
// with UIDVALIDITY respected). A run leases its connection in Postgres, so
// one process syncs a mailbox at a time; a process that dies loses its
// lease and another resumes from the stored cursor. Each run has an
// absolute deadline shorter than its lease (which it never extends), and
// each IMAP/SMTP command one of its own, so a server that answers a byte
// at a time holds neither the worker nor the mailbox. Every message is
// imported with tickets.Service.ImportMail, idempotent by the message's
// id in the mailbox, so a retried, interrupted or overlapping run never
// makes a ticket or message twice. Rate limits and temporary failures end
// the run and move the next one back (Retry-After, or exponential
// backoff); a connection whose grant is gone (token_expired) or whose
// login is refused is not synced until it is reconnected, and then
// resumes from its cursor.
//
// The ReplyWorker sends the replies commands queue for mail tickets (an
// agent's public message), threaded with In-Reply-To and References and,
// for Gmail, in the same Gmail thread. A send interrupted by a crash is
// looked for in the mailbox before it is sent again.
package mailsync
