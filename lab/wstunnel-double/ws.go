package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Minimal RFC 6455 framing, enough for wstunnel's use: every data frame carries one UDP
// datagram (or a chunk of a TCP stream); ping/pong/close are handled by the tunnel code the
// same way wstunnel does it (auto-pong and auto-close are off in the real program and done by
// hand in transport/websocket.rs).

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	// fastwebsockets' default max message size
	maxFramePayload = 64 << 20
	// wstunnel reads at most this much from the local side per frame
	maxPacketLength = 64 * 1024

	wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

var (
	errReservedBits      = errors.New("reserved bits are not zero")
	errInvalidOpcode     = errors.New("invalid opcode")
	errControlFragmented = errors.New("control frame must not be fragmented")
	errControlTooLarge   = errors.New("control frame too large")
	errFrameTooLarge     = errors.New("frame too large")
)

func wsAccept(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(wsGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

type wsFrame struct {
	fin     bool
	op      byte
	payload []byte
}

// wsConn is one side of an established WebSocket.
type wsConn struct {
	conn net.Conn
	r    *bufio.Reader
	mask bool // mask outgoing frames (client role)

	wmu       sync.Mutex
	closeSent atomic.Bool
}

func newWSConn(conn net.Conn, r *bufio.Reader, mask bool) *wsConn {
	if r == nil {
		r = bufio.NewReaderSize(conn, 32*1024)
	}
	return &wsConn{conn: conn, r: r, mask: mask}
}

// readFrame reads one frame. Masked and unmasked frames are both accepted in both roles, as
// fastwebsockets does (the real client does not mask by default).
func (c *wsConn) readFrame() (wsFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return wsFrame{}, err
	}
	f := wsFrame{fin: h[0]&0x80 != 0, op: h[0] & 0x0f}
	if h[0]&0x70 != 0 {
		return f, errReservedBits
	}
	masked := h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.r, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.r, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	switch f.op {
	case opContinuation, opText, opBinary:
	case opClose, opPing, opPong:
		if !f.fin {
			return f, errControlFragmented
		}
		if n > 125 {
			return f, errControlTooLarge
		}
	default:
		return f, errInvalidOpcode
	}
	if n > maxFramePayload {
		return f, errFrameTooLarge
	}
	var key [4]byte
	if masked {
		if _, err := io.ReadFull(c.r, key[:]); err != nil {
			return f, err
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(c.r, f.payload); err != nil {
		return f, err
	}
	if masked {
		for i := range f.payload {
			f.payload[i] ^= key[i&3]
		}
	}
	return f, nil
}

// writeFrame writes one final frame with a single Write call.
func (c *wsConn) writeFrame(op byte, payload []byte) error {
	n := len(payload)
	buf := make([]byte, 0, 14+n)
	buf = append(buf, 0x80|op)
	var mbit byte
	if c.mask {
		mbit = 0x80
	}
	switch {
	case n < 126:
		buf = append(buf, mbit|byte(n))
	case n <= 0xffff:
		buf = append(buf, mbit|126, byte(n>>8), byte(n))
	default:
		buf = append(buf, mbit|127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	if c.mask {
		var key [4]byte
		binary.LittleEndian.PutUint32(key[:], rand.Uint32())
		buf = append(buf, key[:]...)
		start := len(buf)
		buf = append(buf, payload...)
		for i := range payload {
			buf[start+i] ^= key[i&3]
		}
	} else {
		buf = append(buf, payload...)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(buf)
	return err
}

// sendClose sends a normal (1000) close frame once.
func (c *wsConn) sendClose() {
	if c.closeSent.Swap(true) {
		return
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = c.writeFrame(opClose, []byte{0x03, 0xe8})
}

// localSide is the non-WebSocket end of a tunnel: a connected UDP/TCP socket on the server,
// a per-peer UDP flow on the client.
type localSide interface {
	// Read returns the next datagram (or stream chunk) from the local side.
	Read(buf []byte) (int, error)
	// Write sends one datagram (or stream chunk) to the local side.
	Write(p []byte) error
	// Close unblocks Read and releases the local resource.
	Close() error
}

// pumpTunnel relays between ws and local until either side ends, the way
// transport/io.rs does it: local→ws writes one binary frame per read; ws→local writes the
// payload of every data frame; pings are answered; a close frame is answered and ends the
// tunnel; the sender pings every pingEvery and gives up after 3 unanswered pings.
// It returns when everything is closed.
func pumpTunnel(ws *wsConn, local localSide, pingEvery time.Duration, log spanLogger) {
	var inflight atomic.Int32
	remoteDone := make(chan struct{})
	localDone := make(chan struct{})
	stopPing := make(chan struct{})

	// remote => local
	go func() {
		defer close(remoteDone)
		defer log.Infof("Closing local <= remote tunnel")
		for {
			f, err := ws.readFrame()
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) {
					log.Debugf("Remote side closed connection")
				} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
					log.Debugf("Remote side did not answer the close frame in time")
				} else {
					log.Errorf("error while reading from tunnel rx %v", err)
				}
				return
			}
			inflight.Store(0)
			switch f.op {
			case opContinuation, opText, opBinary:
				if err := local.Write(f.payload); err != nil {
					log.Errorf("error while reading from tunnel rx %v", err)
					return
				}
			case opClose:
				log.Debugf("Connection closed frame received")
				ws.sendClose()
				return
			case opPing:
				if err := ws.writeFrame(opPong, f.payload); err != nil {
					log.Warnf("error while handling pending operations cannot send pong frame")
					return
				}
			case opPong:
				log.Debugf("received pong frame")
			}
		}
	}()

	// pinger
	if pingEvery > 0 {
		go func() {
			t := time.NewTicker(pingEvery)
			defer t.Stop()
			for {
				select {
				case <-stopPing:
					return
				case <-t.C:
					if inflight.Add(1)-1 >= 3 {
						log.Warnf("too many in flight/un-answered pings, closing the tunnel")
						_ = ws.conn.Close()
						return
					}
					log.Debugf("sending ping to keep connection alive")
					if err := ws.writeFrame(opPing, nil); err != nil {
						_ = ws.conn.Close()
						return
					}
				}
			}
		}()
	}

	// local => remote
	go func() {
		defer close(localDone)
		defer log.Infof("Closing local => remote tunnel")
		buf := make([]byte, maxPacketLength)
		for {
			n, err := local.Read(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) && !errors.Is(err, errFlowClosed) && !errors.Is(err, io.EOF) {
					log.Warnf("error while reading incoming bytes from local tx tunnel: %v", err)
				}
				return
			}
			if n == 0 {
				continue
			}
			if err := ws.writeFrame(opBinary, buf[:n]); err != nil {
				log.Warnf("error while writing to tx tunnel %v", err)
				return
			}
		}
	}()

	select {
	case <-remoteDone:
		_ = local.Close()
		<-localDone
		ws.sendClose()
	case <-localDone:
		ws.sendClose()
		// give the peer a moment to answer the close frame
		_ = ws.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		<-remoteDone
		_ = local.Close()
	}
	close(stopPing)
	_ = ws.conn.Close()
}
