package main

// The double pretends to be this release of erebe/wstunnel. The wire format and the
// command-line subset were checked against the erebe/wstunnel sources of the v10 line
// (wstunnel/src/config.rs, tunnel/transport/{jwt,websocket,io}.rs, tunnel/server/*.rs,
// restrictions/mod.rs, lib.rs at 10.4.x).
const mimickedVersion = "10.4.4"

// versionLine is what `wstunnel --version` / `-V` prints. It deliberately says that this is
// not the real program, so a host where the double is installed can always be recognised.
const versionLine = "wstunnel-double " + mimickedVersion + " (lab test double; not the real wstunnel)"
