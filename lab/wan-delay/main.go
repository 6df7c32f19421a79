// wan-delay (lab only, for `npm run bench -- --wan`): holds every packet of an NFQUEUE queue for a fixed time, then
// accepts it: the lab kernel has no netem qdisc. Usage: wan-delay QUEUE DELAY_MS
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	nfqueue "github.com/florianl/go-nfqueue"
	"github.com/mdlayher/netlink"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: wan-delay QUEUE DELAY_MS")
		os.Exit(2)
	}
	queue, _ := strconv.Atoi(os.Args[1])
	ms, _ := strconv.Atoi(os.Args[2])
	delay := time.Duration(ms) * time.Millisecond
	nf, err := nfqueue.Open(&nfqueue.Config{
		NfQueue:      uint16(queue),
		MaxPacketLen: 0xffff,
		MaxQueueLen:  0xffff,
		Copymode:     nfqueue.NfQnlCopyMeta,
		WriteTimeout: 50 * time.Millisecond,
		// GSO: the kernel queues a large packet whole rather than segmenting it first (only its metadata is read).
		Flags: nfqueue.NfQaCfgFlagFailOpen | nfqueue.NfQaCfgFlagGSO,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "wan-delay:", err)
		os.Exit(1)
	}
	defer nf.Close()
	// At 20 ms of held packets the kernel's messages outran the socket's default 208 KiB receive buffer: recvmsg
	// failed with ENOBUFS, the read loop stopped, and a TCP flow across it was capped near 8 MB/s. A large buffer
	// (the kernel may clamp it to rmem_max), and no ENOBUFS: a message still lost leaves its packet queued until the
	// next batch verdict, which accepts every id up to its own.
	if err := nf.Con.SetReadBuffer(64 << 20); err != nil {
		fmt.Fprintln(os.Stderr, "wan-delay: receive buffer:", err)
	}
	if err := nf.SetOption(netlink.NoENOBUFS, true); err != nil {
		fmt.Fprintln(os.Stderr, "wan-delay: NETLINK_NO_ENOBUFS:", err)
		os.Exit(1)
	}
	type held struct {
		id  uint32
		due time.Time
	}
	pending := make(chan held, 1<<16)
	go func() { // releases in arrival order, each at its due time: a fixed delay keeps the order
		for p := range pending {
			// Sleeps shorter than a millisecond cost a whole timer tick each: release up to 0.5 ms early instead.
			if d := time.Until(p.due); d > 500*time.Microsecond {
				time.Sleep(d)
			}
			last := p.id
			// Everything else already due goes with it: one batch verdict accepts every id up to the last.
		more:
			for {
				select {
				case q := <-pending:
					last = q.id
					if time.Until(q.due) > 500*time.Microsecond {
						time.Sleep(time.Until(q.due))
						break more
					}
				default:
					break more
				}
			}
			_ = nf.SetVerdictBatch(last, nfqueue.NfAccept)
		}
	}()

	err = nf.RegisterWithErrorFunc(context.Background(), func(a nfqueue.Attribute) int {
		if a.PacketID != nil {
			pending <- held{*a.PacketID, time.Now().Add(delay)}
		}
		return 0
	}, func(e error) int { return 0 })
	if err != nil {
		fmt.Fprintln(os.Stderr, "wan-delay:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	select {}
}
