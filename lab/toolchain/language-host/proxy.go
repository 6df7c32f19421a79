// Lab stand-in for pulumi-language-nodejs (see main.go): the ResourceMonitor proxy node talks to,
// and the FIFO pair @pulumi/pulumi opens for synchronous invokes (--sync DIR).
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/status"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// ---------------------------------------------------------------------------------------------
// Transparent gRPC proxy. The real host registers a ResourceMonitor server that forwards each
// method to the engine; forwarding raw frames for every method (whatever the proto version adds)
// does the same without tying this file to one list of methods.

type rawFrame struct{ b []byte }

type rawCodec struct{}

func (rawCodec) Name() string { return "proto" } // same content type as the real messages

func (rawCodec) Marshal(v any) ([]byte, error) {
	if f, ok := v.(*rawFrame); ok {
		return f.b, nil
	}
	return encoding.GetCodec(protoenc.Name).Marshal(v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	if f, ok := v.(*rawFrame); ok {
		f.b = append([]byte(nil), data...)
		return nil
	}
	return encoding.GetCodec(protoenc.Name).Unmarshal(data, v)
}

func proxyServerOptions(target *grpc.ClientConn) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodec(rawCodec{}),
		grpc.MaxRecvMsgSize(400 * 1024 * 1024),
		grpc.MaxSendMsgSize(400 * 1024 * 1024),
		grpc.UnknownServiceHandler(func(_ any, in grpc.ServerStream) error {
			method, ok := grpc.MethodFromServerStream(in)
			if !ok {
				return status.Error(codes.Internal, "proxy: no method in stream")
			}
			ctx, cancel := context.WithCancel(in.Context())
			defer cancel()
			out, err := target.NewStream(ctx,
				&grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method,
				grpc.ForceCodec(rawCodec{}))
			if err != nil {
				return err
			}
			// client -> engine
			upErr := make(chan error, 1)
			go func() {
				for {
					f := &rawFrame{}
					if err := in.RecvMsg(f); err != nil {
						if errors.Is(err, io.EOF) {
							upErr <- out.CloseSend()
						} else {
							upErr <- err
						}
						return
					}
					if err := out.SendMsg(f); err != nil {
						upErr <- err
						return
					}
				}
			}()
			// engine -> client
			if md, err := out.Header(); err == nil {
				_ = in.SendHeader(md)
			}
			for {
				f := &rawFrame{}
				if err := out.RecvMsg(f); err != nil {
					in.SetTrailer(out.Trailer())
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
				if err := in.SendMsg(f); err != nil {
					return err
				}
			}
		}),
	}
}

// ---------------------------------------------------------------------------------------------
// Synchronous invokes: two FIFOs, invoke_req (node writes) and invoke_res (we write); each message
// is a 4-byte big-endian length and a serialized ResourceInvokeRequest/ResourceInvokeResponse.
// @pulumi/pulumi opens them only when a program asks for a synchronous invoke.

type syncPipes struct {
	dir              string
	reqPath, resPath string

	mu               sync.Mutex
	closed           bool
	reqPipe, resPipe *os.File
}

func newSyncPipes() (*syncPipes, error) {
	dir, err := os.MkdirTemp("", "pulumi-node-pipes")
	if err != nil {
		return nil, err
	}
	p := &syncPipes{dir: dir, reqPath: filepath.Join(dir, "invoke_req"), resPath: filepath.Join(dir, "invoke_res")}
	// Created before node starts, so node's open() always finds FIFOs.
	if err := syscall.Mkfifo(p.reqPath, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := syscall.Mkfifo(p.resPath, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// serve answers requests until node closes its end; the channel gets nil or the error.
func (p *syncPipes) serve(ctx context.Context, target pulumirpc.ResourceMonitorClient) chan error {
	done := make(chan error, 1)
	go func() {
		done <- p.loop(ctx, target)
		close(done)
	}()
	return done
}

func (p *syncPipes) loop(ctx context.Context, target pulumirpc.ResourceMonitorClient) error {
	codec := encoding.GetCodec(protoenc.Name)
	// These opens block until node opens the other ends (or shutdown unblocks them).
	req, err := os.OpenFile(p.reqPath, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	res, err := os.OpenFile(p.resPath, os.O_WRONLY, 0)
	if err != nil {
		req.Close()
		return err
	}
	p.mu.Lock()
	p.reqPipe, p.resPipe = req, res
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil
	}
	for {
		var n uint32
		if err := binary.Read(req, binary.BigEndian, &n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(req, buf); err != nil {
			return err
		}
		var in pulumirpc.ResourceInvokeRequest
		if err := codec.Unmarshal(buf, &in); err != nil {
			return err
		}
		out, err := target.Invoke(ctx, &in)
		if err != nil {
			// The pipe protocol has no error frame: report it as a check failure, as the real host does.
			if out == nil {
				out = &pulumirpc.ResourceInvokeResponse{}
			}
			out.Failures = append(out.Failures, &pulumirpc.CheckFailure{Reason: err.Error()})
		}
		b, err := codec.Marshal(out)
		if err != nil {
			return err
		}
		if err := binary.Write(res, binary.BigEndian, uint32(len(b))); err != nil {
			return err
		}
		if _, err := res.Write(b); err != nil {
			return err
		}
	}
}

func (p *syncPipes) shutdown() {
	p.mu.Lock()
	p.closed = true
	req, res := p.reqPipe, p.resPipe
	p.mu.Unlock()
	if req == nil {
		// The serving goroutine may still be blocked opening the FIFOs: open the other ends
		// without blocking so it wakes up, sees closed, and returns.
		if f, err := os.OpenFile(p.reqPath, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		if f, err := os.OpenFile(p.resPath, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	} else {
		req.Close()
		res.Close()
	}
	_ = os.RemoveAll(p.dir)
}
