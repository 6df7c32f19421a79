#!/data/data/com.termux/files/usr/bin/sh
# Managed by wg-relay (npm run client-files): wstunnel's android_arm64 build beside the WireGuard app.
export WSTUNNEL_HTTP_UPGRADE_PATH_PREFIX=PrefixPlaceholder0123
export SSL_CERT_FILE=/data/data/com.termux/files/home/wg-relay/wg-relay-ca.crt
exec /data/data/com.termux/files/home/wg-relay/wstunnel client --local-to-remote 'udp://127.0.0.1:51820:127.0.0.1:51820?timeout_sec=0' --tls-verify-certificate wss://sync.c0xl.ch:443
