package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The tunnel request travels as a JWT (wstunnel/src/tunnel/transport/jwt.rs):
//
//	Sec-WebSocket-Protocol: v1, authorization.bearer.<JWT>
//
// header {"typ":"JWT","alg":"HS256"}, claims {"id":"<uuid v7>","p":<LocalProtocol>,"r":"<host>","rp":<port>}.
// The client signs with a random per-process key; the server decodes with
// insecure_disable_signature_validation() and no required claims, so any signature is accepted.
const jwtHeaderPrefix = "authorization.bearer."

// tunnelProto is the serde (externally tagged) form of wstunnel's LocalProtocol enum.
type tunnelProto struct {
	name          string         // "Udp", "Tcp", "ReverseTcp", ...
	timeout       *time.Duration // Udp-like variants: nil is None
	proxyProtocol bool           // Tcp / Stdio
}

func udpProto(timeout time.Duration) tunnelProto {
	p := tunnelProto{name: "Udp"}
	if timeout > 0 {
		t := timeout
		p.timeout = &t
	}
	return p
}

func (p tunnelProto) isReverse() bool { return strings.HasPrefix(p.name, "Reverse") }

func rustDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// Debug renders like Rust's {:?}, e.g. `Udp { timeout: None }`.
func (p tunnelProto) Debug() string {
	switch p.name {
	case "Udp", "TProxyUdp", "ReverseUdp":
		if p.timeout == nil {
			return p.name + " { timeout: None }"
		}
		return p.name + " { timeout: Some(" + rustDuration(*p.timeout) + ") }"
	case "Tcp", "Stdio":
		return p.name + " { proxy_protocol: " + strconv.FormatBool(p.proxyProtocol) + " }"
	default:
		return p.name
	}
}

func (p tunnelProto) marshalJSON() string {
	switch p.name {
	case "Udp", "TProxyUdp", "ReverseUdp":
		if p.timeout == nil {
			return `{"` + p.name + `":{"timeout":null}}`
		}
		secs := int64(*p.timeout / time.Second)
		nanos := int64(*p.timeout % time.Second)
		return fmt.Sprintf(`{"%s":{"timeout":{"secs":%d,"nanos":%d}}}`, p.name, secs, nanos)
	case "Tcp", "Stdio":
		return fmt.Sprintf(`{"%s":{"proxy_protocol":%t}}`, p.name, p.proxyProtocol)
	default:
		return strconv.Quote(p.name)
	}
}

type tunnelClaims struct {
	ID string
	P  tunnelProto
	R  string
	RP uint16
}

var jwtKey = func() []byte {
	k := make([]byte, 16)
	_, _ = rand.Read(k)
	return k
}()

var b64 = base64.RawURLEncoding

// encodeTunnelJWT builds the token exactly as jsonwebtoken::encode does for the real client.
func encodeTunnelJWT(c tunnelClaims) string {
	header := `{"typ":"JWT","alg":"HS256"}`
	claims := `{"id":` + strconv.Quote(c.ID) + `,"p":` + c.P.marshalJSON() + `,"r":` + jsonString(c.R) + `,"rp":` + strconv.Itoa(int(c.RP)) + `}`
	msg := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, jwtKey)
	mac.Write([]byte(msg))
	return msg + "." + b64.EncodeToString(mac.Sum(nil))
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

var jwtAlgs = map[string]bool{
	"HS256": true, "HS384": true, "HS512": true, "ES256": true, "ES384": true,
	"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true, "EdDSA": true,
}

// decodeTunnelJWT mirrors jwt_token_to_tunnel(): jsonwebtoken::decode with signature
// validation disabled, no required claims, exp checked only when present (60 s leeway),
// an "aud" claim refused (no audience is configured), then serde into JwtTunnelConfig.
func decodeTunnelJWT(tok string) (tunnelClaims, error) {
	var c tunnelClaims
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return c, errors.New("InvalidToken")
	}
	msg := tok[:i]
	j := strings.LastIndexByte(msg, '.')
	if j < 0 {
		return c, errors.New("InvalidToken")
	}
	hdrB, err := b64.Strict().DecodeString(msg[:j])
	if err != nil {
		return c, fmt.Errorf("Base64(%v)", err)
	}
	var hdr struct {
		Alg *string `json:"alg"`
	}
	if err := json.Unmarshal(hdrB, &hdr); err != nil {
		return c, fmt.Errorf("Json(%v)", err)
	}
	if hdr.Alg == nil || !jwtAlgs[*hdr.Alg] {
		return c, errors.New("Json(unknown or missing alg)")
	}
	payB, err := b64.Strict().DecodeString(msg[j+1:])
	if err != nil {
		return c, fmt.Errorf("Base64(%v)", err)
	}
	dec := json.NewDecoder(bytes.NewReader(payB))
	dec.UseNumber()
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil || m == nil {
		return c, fmt.Errorf("Json(invalid claims: %v)", err)
	}
	if dec.More() {
		return c, errors.New("Json(trailing characters)")
	}
	// Registered claims that jsonwebtoken looks at with the validation wstunnel uses.
	if raw, ok := m["exp"]; ok {
		if exp, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
			if exp < uint64(time.Now().Unix())-60 {
				return c, errors.New("ExpiredSignature")
			}
		}
	}
	if raw, ok := m["aud"]; ok {
		var s string
		var arr []json.RawMessage
		if json.Unmarshal(raw, &s) == nil || (json.Unmarshal(raw, &arr) == nil && len(arr) > 0) {
			return c, errors.New("InvalidAudience")
		}
	}
	// JwtTunnelConfig { id: String, p: LocalProtocol, r: String, rp: u16 }
	if err := unmarshalString(m, "id", &c.ID); err != nil {
		return c, err
	}
	if err := unmarshalString(m, "r", &c.R); err != nil {
		return c, err
	}
	rpRaw, ok := m["rp"]
	if !ok {
		return c, errors.New("Json(missing field `rp`)")
	}
	rp, err := strconv.ParseUint(string(rpRaw), 10, 16)
	if err != nil {
		return c, errors.New("Json(invalid type or value for `rp`, expected u16)")
	}
	c.RP = uint16(rp)
	pRaw, ok := m["p"]
	if !ok {
		return c, errors.New("Json(missing field `p`)")
	}
	if c.P, err = parseProto(pRaw); err != nil {
		return c, fmt.Errorf("Json(%v)", err)
	}
	return c, nil
}

func unmarshalString(m map[string]json.RawMessage, key string, dst *string) error {
	raw, ok := m[key]
	if !ok {
		return fmt.Errorf("Json(missing field `%s`)", key)
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) || json.Unmarshal(raw, dst) != nil {
		return fmt.Errorf("Json(invalid type for `%s`, expected a string)", key)
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// parseProto accepts the serde_json forms of LocalProtocol.
func parseProto(raw json.RawMessage) (tunnelProto, error) {
	var unit string
	if json.Unmarshal(raw, &unit) == nil {
		switch unit {
		case "TProxyTcp", "ReverseTcp":
			return tunnelProto{name: unit}, nil
		}
		return tunnelProto{}, fmt.Errorf("unknown or non-unit variant `%s`", unit)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) != 1 {
		return tunnelProto{}, errors.New("invalid type for `p`, expected enum LocalProtocol")
	}
	for name, v := range m {
		switch name {
		case "Udp", "TProxyUdp", "ReverseUdp":
			t, err := parseTimeoutField(v)
			if err != nil {
				return tunnelProto{}, err
			}
			return tunnelProto{name: name, timeout: t}, nil
		case "Tcp", "Stdio":
			var s struct {
				ProxyProtocol *bool `json:"proxy_protocol"`
			}
			var arr []json.RawMessage
			if json.Unmarshal(v, &arr) == nil && len(arr) == 1 {
				var b bool
				if json.Unmarshal(arr[0], &b) != nil {
					return tunnelProto{}, errors.New("invalid proxy_protocol")
				}
				return tunnelProto{name: name, proxyProtocol: b}, nil
			}
			if err := json.Unmarshal(v, &s); err != nil || s.ProxyProtocol == nil {
				return tunnelProto{}, errors.New("missing field `proxy_protocol`")
			}
			return tunnelProto{name: name, proxyProtocol: *s.ProxyProtocol}, nil
		case "TProxyTcp", "ReverseTcp":
			if !isNull(v) {
				return tunnelProto{}, errors.New("invalid type: expected unit variant")
			}
			return tunnelProto{name: name}, nil
		case "Socks5", "HttpProxy", "ReverseSocks5", "ReverseHttpProxy", "ReverseUnix", "Unix":
			// Never served by the double (the real server would reject most of them too);
			// only the name matters for the decision.
			return tunnelProto{name: name}, nil
		default:
			return tunnelProto{}, fmt.Errorf("unknown variant `%s`", name)
		}
	}
	panic("unreachable")
}

func parseTimeoutField(v json.RawMessage) (*time.Duration, error) {
	var timeoutRaw json.RawMessage
	var arr []json.RawMessage
	if json.Unmarshal(v, &arr) == nil {
		if len(arr) != 1 {
			return nil, errors.New("invalid length for struct variant")
		}
		timeoutRaw = arr[0]
	} else {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil {
			return nil, errors.New("invalid type: expected struct variant")
		}
		timeoutRaw = obj["timeout"] // missing Option field is None
	}
	if timeoutRaw == nil || isNull(timeoutRaw) {
		return nil, nil
	}
	// serde's Duration: {"secs":u64,"nanos":u32} or [secs, nanos]
	var secsRaw, nanosRaw json.RawMessage
	var pair []json.RawMessage
	if json.Unmarshal(timeoutRaw, &pair) == nil {
		if len(pair) != 2 {
			return nil, errors.New("invalid Duration")
		}
		secsRaw, nanosRaw = pair[0], pair[1]
	} else {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(timeoutRaw, &obj); err != nil {
			return nil, errors.New("invalid Duration")
		}
		for k := range obj {
			if k != "secs" && k != "nanos" {
				return nil, fmt.Errorf("unknown field `%s` in Duration", k)
			}
		}
		secsRaw, nanosRaw = obj["secs"], obj["nanos"]
		if secsRaw == nil || nanosRaw == nil {
			return nil, errors.New("missing field in Duration")
		}
	}
	secs, err1 := strconv.ParseUint(strings.TrimSpace(string(secsRaw)), 10, 64)
	nanos, err2 := strconv.ParseUint(strings.TrimSpace(string(nanosRaw)), 10, 32)
	if err1 != nil || err2 != nil {
		return nil, errors.New("invalid Duration")
	}
	total := secs + nanos/1e9
	if total > uint64((1<<63-1)/int64(time.Second)) {
		// longer than a Go Duration can hold: treat as "very long"
		d := time.Duration(1<<63 - 1)
		return &d, nil
	}
	d := time.Duration(secs)*time.Second + time.Duration(nanos)
	return &d, nil
}
