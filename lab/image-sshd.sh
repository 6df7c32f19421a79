# shellcheck shell=bash
# sshd as every lab image has it (sourced by image.sh and vm-image.sh; their cache keys include this function).

# sshd in the root file system $1: keys only, root by key only, only the ed25519 host key (made per host), and none
# of the client's locale variables (they would name locales the image does not have).
lab_sshd_config() {
  local r=$1
  mkdir -p "$r/etc/ssh/sshd_config.d"
  cat >"$r/etc/ssh/sshd_config.d/00-lab.conf" <<'CONF'
# wg-relay lab image
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
CONF
  sed -i -e 's/^\(AcceptEnv .*\)$/# \1  (disabled by the wg-relay lab image)/' "$r/etc/ssh/sshd_config"
  rm -f "$r"/etc/ssh/ssh_host_*
}
