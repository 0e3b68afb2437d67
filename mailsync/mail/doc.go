// Package mail converts email to and from the shapes a help desk needs: Parse
// turns a raw RFC 5322 message (as Gmail's format=raw returns it) into a
// Message with decoded headers, a text and an HTML body and the attachments'
// names and sizes; StripQuoted and StripQuotedHTML keep the new part of a
// reply; ThreadKey names the keys that tie a message to an existing ticket
// and DMARCResult reads the receiving server's verdict on its sender;
// BuildReply writes an agent's reply so that mail clients thread it.
//
// The package is pure: no I/O, no clock except the time.Now default of
// BuildReply, safe for concurrent use. It imports the standard library, uuid
// and the root package only.
//
// Charsets: UTF-8, US-ASCII, ISO-8859-1 (decoded as Windows-1252, as the
// WHATWG Encoding Standard and every browser do, since mail labelled latin1
// is nearly always cp1252), Windows-1252 and ISO-8859-15 are decoded exactly.
// Text in any other charset is decoded best-effort: ASCII is kept, other
// bytes become U+FFFD, and Message.Warnings says so. Parse never fails for a
// charset.
package mail
