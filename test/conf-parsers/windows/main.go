// Parses each conf named on the command line with WireGuard for Windows' own parser
// (golang.zx2c4.com/wireguard/windows/conf, as the app imports a file), one result line per file:
// "ok FILE" or "rejected FILE: ERROR". The package builds for Windows only; the tests run it under Wine.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.zx2c4.com/wireguard/windows/conf"
)

func main() {
	for _, path := range os.Args[1:] {
		text, err := os.ReadFile(path)
		if err == nil {
			_, err = conf.FromWgQuickWithUnknownEncoding(string(text), strings.TrimSuffix(filepath.Base(path), ".conf"))
		}
		if err != nil {
			fmt.Printf("rejected %s: %v\n", path, err)
		} else {
			fmt.Printf("ok %s\n", path)
		}
	}
}
