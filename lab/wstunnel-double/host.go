package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// hostKind mirrors the variants of url::Host in the real program.
type hostKind int

const (
	hostDomain hostKind = iota
	hostIPv4
	hostIPv6
)

// host is a parsed host, as url::Host::parse (WHATWG "host parser", special schemes) gives it.
type host struct {
	kind   hostKind
	domain string     // hostDomain: lower-cased ASCII
	ip     netip.Addr // hostIPv4 / hostIPv6
}

// String is the serialisation url::Host's Display gives: the domain, dotted IPv4, or
// bracketed, WHATWG-compressed IPv6. This is what the real client puts into the "r" claim.
func (h host) String() string {
	switch h.kind {
	case hostIPv4:
		return h.ip.String()
	case hostIPv6:
		return "[" + serializeIPv6(h.ip) + "]"
	default:
		return h.domain
	}
}

// Debug is the Rust {:?} rendering, used in log lines copied from the real program.
func (h host) Debug() string {
	switch h.kind {
	case hostIPv4:
		return "Ipv4(" + h.ip.String() + ")"
	case hostIPv6:
		return "Ipv6(" + serializeIPv6(h.ip) + ")"
	default:
		return "Domain(" + strconv.Quote(h.domain) + ")"
	}
}

// dialAddr returns "host:port" for net.Dial.
func (h host) dialAddr(port uint16) string {
	switch h.kind {
	case hostIPv4:
		return h.ip.String() + ":" + strconv.Itoa(int(port))
	case hostIPv6:
		return "[" + h.ip.String() + "]:" + strconv.Itoa(int(port))
	default:
		return h.domain + ":" + strconv.Itoa(int(port))
	}
}

// sniName is the name used for TLS (SNI and verification): the domain, or the bare IP.
func (h host) tlsName() string {
	if h.kind == hostDomain {
		return h.domain
	}
	return h.ip.String()
}

var errEmptyHost = errors.New("empty host")

// parseHost follows url::Host::parse: "[...]" is IPv6; otherwise percent-decode,
// lower-case, refuse forbidden code points, and if the last label is a number parse the
// whole thing as a WHATWG IPv4 address ("127.1", "0x7f.0.0.1" and "2130706433" all mean
// 127.0.0.1). Non-ASCII (IDNA) domains are not supported by the double and are refused.
func parseHost(input string) (host, error) {
	if input == "" {
		return host{}, errEmptyHost
	}
	if strings.HasPrefix(input, "[") {
		if !strings.HasSuffix(input, "]") || len(input) < 3 {
			return host{}, errors.New("invalid IPv6 address")
		}
		inner := input[1 : len(input)-1]
		if strings.ContainsAny(inner, "%") {
			return host{}, errors.New("invalid IPv6 address")
		}
		ip, err := netip.ParseAddr(inner)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return host{}, errors.New("invalid IPv6 address")
		}
		return host{kind: hostIPv6, ip: ip}, nil
	}
	decoded, err := percentDecode(input)
	if err != nil {
		return host{}, err
	}
	for i := 0; i < len(decoded); i++ {
		if decoded[i] >= 0x80 {
			return host{}, errors.New("international domain names are not supported by the lab double")
		}
	}
	d := strings.ToLower(decoded)
	if d == "" {
		return host{}, errEmptyHost
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c <= 0x20 || c == 0x7f || strings.IndexByte("#%/:<>?@[\\]^|", c) >= 0 {
			return host{}, fmt.Errorf("invalid domain character")
		}
	}
	if endsInANumber(d) {
		ip, err := parseWHATWGIPv4(d)
		if err != nil {
			return host{}, err
		}
		return host{kind: hostIPv4, ip: ip}, nil
	}
	return host{kind: hostDomain, domain: d}, nil
}

func percentDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(v))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func endsInANumber(s string) bool {
	parts := strings.Split(s, ".")
	last := parts[len(parts)-1]
	if last == "" {
		if len(parts) == 1 {
			return false
		}
		last = parts[len(parts)-2]
	}
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, _, err := parseIPv4Number(last)
	return err == nil
}

var errBadIPv4 = errors.New("invalid IPv4 address")

// parseIPv4Number is the WHATWG IPv4 number parser as the url crate implements it: a syntax
// error is an error; a syntactically valid number that does not fit in 32 bits reports
// overflow (the host still "ends in a number", but is not a valid address).
func parseIPv4Number(s string) (v uint32, overflow bool, err error) {
	if s == "" {
		return 0, false, errBadIPv4
	}
	radix := 10
	digits := "0123456789"
	if len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s, radix, digits = s[2:], 16, "0123456789abcdefABCDEF"
	} else if len(s) >= 2 && s[0] == '0' {
		s, radix, digits = s[1:], 8, "01234567"
	}
	if s == "" {
		return 0, false, nil
	}
	if strings.Trim(s, digits) != "" {
		return 0, false, errBadIPv4
	}
	n, perr := strconv.ParseUint(s, radix, 32)
	if perr != nil {
		return 0, true, nil
	}
	return uint32(n), false, nil
}

func parseWHATWGIPv4(s string) (netip.Addr, error) {
	parts := strings.Split(s, ".")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, errBadIPv4
	}
	nums := make([]uint32, 0, len(parts))
	for _, p := range parts {
		n, overflow, err := parseIPv4Number(p)
		if err != nil || overflow {
			return netip.Addr{}, errBadIPv4
		}
		nums = append(nums, n)
	}
	ipv4 := nums[len(nums)-1]
	nums = nums[:len(nums)-1]
	if ipv4 > (^uint32(0))>>(8*uint(len(nums))) {
		return netip.Addr{}, errBadIPv4
	}
	for _, n := range nums {
		if n > 255 {
			return netip.Addr{}, errBadIPv4
		}
	}
	for i, n := range nums {
		ipv4 += n << (8 * (3 - uint(i)))
	}
	return netip.AddrFrom4([4]byte{byte(ipv4 >> 24), byte(ipv4 >> 16), byte(ipv4 >> 8), byte(ipv4)}), nil
}

// serializeIPv6 is the WHATWG IPv6 serializer (compress the first longest run of two or more
// zero pieces; lower-case hex; never a dotted IPv4 tail).
func serializeIPv6(a netip.Addr) string {
	b := a.As16()
	var p [8]uint16
	for i := range p {
		p[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	compress, best := -1, 1
	for i := 0; i < 8; {
		if p[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && p[j] == 0 {
			j++
		}
		if j-i > best {
			compress, best = i, j-i
		}
		i = j
	}
	var out strings.Builder
	ignore0 := false
	for i := 0; i < 8; i++ {
		if ignore0 && p[i] == 0 {
			continue
		}
		ignore0 = false
		if i == compress {
			if i == 0 {
				out.WriteString("::")
			} else {
				out.WriteString(":")
			}
			ignore0 = true
			continue
		}
		out.WriteString(strconv.FormatUint(uint64(p[i]), 16))
		if i != 7 {
			out.WriteString(":")
		}
	}
	return out.String()
}

// parseStrictIP is Rust's IpAddr::from_str: dotted-quad IPv4 without leading zeros, or
// IPv6 without brackets or zone.
func parseStrictIP(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip, true
}
