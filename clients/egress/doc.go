// Package egress is HelpDeskFlow's outbound address policy: the one rule
// for which addresses a connection to a host that a user named — a webhook
// URL, an Outlook (IMAP/SMTP) server, a Shopify shop, and the token
// endpoints and APIs reached with the same clients — may reach.
//
// A Policy refuses loopback (unless AllowLoopback, which only development
// and tests set), private, carrier-grade NAT, unique-local, link-local
// (cloud metadata services live at 169.254.169.254), multicast,
// unspecified, reserved and documentation addresses, and the IPv6 forms
// that embed a refused IPv4 address (IPv4-mapped, IPv4-compatible, NAT64,
// 6to4). It is applied twice:
//
//   - CheckHost, when a host is saved: an IP literal (also in legacy forms
//     such as 127.1, 0x7f000001 or 2130706433, which are refused as
//     non-standard even when public) and the names localhost and
//     *.localhost are judged without DNS; other names pass.
//   - Control (a net.Dialer's Control func, used by Dialer, DialContext and
//     Transport), when connecting: on the address actually dialled, after
//     DNS resolution, before the connection is made. So a name that
//     resolves, or later re-resolves (DNS rebinding), to a refused address
//     is refused at each connection, and nothing reaches the address.
//
// A refusal is a *BlockedAddressError; errors.Is(err, ErrBlockedAddress)
// holds for it and for any error wrapping it (net.OpError, url.Error).
//
// The package depends on the standard library only.
package egress
