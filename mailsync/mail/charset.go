package mail

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// cp1252High maps the bytes 0x80–0x9F of Windows-1252. The five bytes the
// code page leaves undefined map to the C1 control of the same value, as in
// the WHATWG Encoding Standard.
var cp1252High = [32]rune{
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
}

// latin9 lists the bytes where ISO-8859-15 differs from ISO-8859-1.
var latin9 = map[byte]rune{
	0xA4: 0x20AC, 0xA6: 0x0160, 0xA8: 0x0161, 0xB4: 0x017D,
	0xB8: 0x017E, 0xBC: 0x0152, 0xBD: 0x0153, 0xBE: 0x0178,
}

// charset kinds.
const (
	csUnknown = iota
	csUTF8
	csASCII
	csCP1252
	csLatin9
)

// charsetKind maps a charset label (case-insensitive, quotes and spaces
// ignored) to the decoder for it; "" is treated as US-ASCII, the MIME
// default.
func charsetKind(label string) int {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`)) {
	case "utf-8", "utf8", "unicode-1-1-utf-8", "x-unicode20utf8":
		return csUTF8
	case "", "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "cp367", "csascii":
		return csASCII
	case "windows-1252", "cp1252", "x-cp1252", "iso-8859-1", "iso8859-1", "iso_8859-1",
		"iso_8859-1:1987", "latin1", "latin-1", "l1", "cp819", "ibm819", "iso-ir-100", "csisolatin1":
		return csCP1252
	case "iso-8859-15", "iso8859-15", "iso_8859-15", "latin-9", "latin9", "l9", "csisolatin9":
		return csLatin9
	}
	return csUnknown
}

// decodeCP1252 decodes Windows-1252 (and so ISO-8859-1) bytes.
func decodeCP1252(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/8)
	for _, c := range b {
		switch {
		case c < 0x80:
			sb.WriteByte(c)
		case c < 0xA0:
			sb.WriteRune(cp1252High[c-0x80])
		default:
			sb.WriteRune(rune(c))
		}
	}
	return sb.String()
}

// decodeLatin9 decodes ISO-8859-15 bytes.
func decodeLatin9(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/8)
	for _, c := range b {
		if r, ok := latin9[c]; ok {
			sb.WriteRune(r)
		} else {
			sb.WriteRune(rune(c))
		}
	}
	return sb.String()
}

// decodeUnknown keeps ASCII and replaces every other byte with U+FFFD.
func decodeUnknown(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		if c < 0x80 {
			sb.WriteByte(c)
		} else {
			sb.WriteRune(utf8.RuneError)
		}
	}
	return sb.String()
}

// decodeCharset decodes b from the named charset to UTF-8. known is false
// when the charset is not one of those the package decodes exactly; the
// text is then decoded best-effort by decodeUnknown (or kept when it is
// valid UTF-8 already, a common mislabelling).
func decodeCharset(label string, b []byte) (s string, known bool) {
	switch charsetKind(label) {
	case csUTF8:
		return strings.ToValidUTF8(string(b), "\uFFFD"), true
	case csASCII:
		// Mail labelled (or defaulting to) US-ASCII with 8-bit bytes is
		// UTF-8 or cp1252 in practice.
		if utf8.Valid(b) {
			return string(b), true
		}
		return decodeCP1252(b), true
	case csCP1252:
		return decodeCP1252(b), true
	case csLatin9:
		return decodeLatin9(b), true
	}
	if utf8.Valid(b) {
		return string(b), false
	}
	return decodeUnknown(b), false
}

// charsetReader is a mime.WordDecoder CharsetReader for the charsets the
// package knows, and best-effort for the others, calling warn for those.
func charsetReader(warn func(string)) func(string, io.Reader) (io.Reader, error) {
	return func(label string, in io.Reader) (io.Reader, error) {
		b, err := io.ReadAll(in)
		if err != nil {
			return nil, err
		}
		s, known := decodeCharset(label, b)
		if !known {
			warn(fmt.Sprintf("unsupported charset %q in a header: decoded best-effort, non-ASCII replaced with U+FFFD", label))
		}
		return strings.NewReader(s), nil
	}
}
