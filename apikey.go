package helpdeskflow

import (
	"crypto/rand"
	"hash/crc32"
	"math/big"
	"strings"
)

// API keys look like hdf_<30 random base62 characters><6 base62 checksum
// characters>, like GitHub's tokens: the fixed prefix lets secret scanners
// find leaked keys, and the CRC-32 checksum lets a malformed key be refused
// without a database lookup.
const (
	APIKeyPrefix      = "hdf_"
	apiKeyRandomLen   = 30
	apiKeyChecksumLen = 6
	// APIKeyLen is the length of every well-formed API key.
	APIKeyLen = len(APIKeyPrefix) + apiKeyRandomLen + apiKeyChecksumLen
	// apiKeyDisplayLen is how much of a key is kept to show it in lists.
	apiKeyDisplayLen = len(APIKeyPrefix) + 8
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewAPIKeySecret returns a new random API key (about 178 bits of entropy).
func NewAPIKeySecret() (string, error) {
	var b strings.Builder
	b.WriteString(APIKeyPrefix)
	max := big.NewInt(int64(len(base62)))
	for range apiKeyRandomLen {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", &Error{Code: EInternal, Message: "generate API key", Err: err}
		}
		b.WriteByte(base62[n.Int64()])
	}
	random := b.String()[len(APIKeyPrefix):]
	b.WriteString(apiKeyChecksum(random))
	return b.String(), nil
}

// ValidAPIKeyFormat reports whether key has the prefix, length, alphabet
// and checksum of a key made by NewAPIKeySecret.
func ValidAPIKeyFormat(key string) bool {
	if len(key) != APIKeyLen || !strings.HasPrefix(key, APIKeyPrefix) {
		return false
	}
	body := key[len(APIKeyPrefix):]
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(base62, body[i]) < 0 {
			return false
		}
	}
	return apiKeyChecksum(body[:apiKeyRandomLen]) == body[apiKeyRandomLen:]
}

// APIKeyDisplayPrefix returns the part of a key that may be shown in lists
// and logs to recognise it: the prefix and the first 8 random characters.
func APIKeyDisplayPrefix(key string) string {
	if len(key) < apiKeyDisplayLen {
		return key
	}
	return key[:apiKeyDisplayLen]
}

func apiKeyChecksum(random string) string {
	sum := uint64(crc32.ChecksumIEEE([]byte(random)))
	out := make([]byte, apiKeyChecksumLen)
	for i := apiKeyChecksumLen - 1; i >= 0; i-- {
		out[i] = base62[sum%62]
		sum /= 62
	}
	return string(out)
}
