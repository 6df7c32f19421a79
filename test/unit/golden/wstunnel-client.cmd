@echo off
rem Managed by wg-relay (npm run client-files): the wstunnel client beside WireGuard for Windows.
set "WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX=PrefixPlaceholder0123"
set "SSL_CERT_FILE=C:\ProgramData\wg-relay\wg-relay-ca.crt"
"C:\ProgramData\wg-relay\wstunnel.exe" client --local-to-remote udp://127.0.0.1:51820:127.0.0.1:51820?timeout_sec=0 --tls-verify-certificate wss://sync.c0xl.ch:443
