#!/usr/bin/env bash
# Builds a busybox root filesystem tarball from Debian's busybox-static: a real, tiny image with
# sh, httpd, nc, wget, sleep and friends, made without any registry.
#
#   deploy/busybox-image.sh OUT.tar [EXTRA_FILE:PATH_IN_IMAGE ...]
#
# Then: hoist image import OUT.tar busybox
set -euo pipefail

out=${1:?usage: busybox-image.sh OUT.tar [EXTRA_FILE:PATH_IN_IMAGE ...]}
shift
bb=$(command -v busybox || true)
if [ -z "$bb" ] || ! file -L "$bb" 2>/dev/null | grep -q static; then
  bb=/bin/busybox
fi
if [ ! -x "$bb" ]; then
  echo "busybox-image: busybox not found; install it with: apt-get install -y busybox-static" >&2
  exit 1
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,etc,root,tmp,var/www,home,usr/bin,usr/sbin,proc,sys,dev}
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
tty:x:5:
www-data:x:33:
staff:x:50:www-data
nogroup:x:65534:
GROUP
echo '<h1>hello from hoist</h1>' > "$root/var/www/index.html"
for extra in "$@"; do
  src=${extra%%:*}
  dst=${extra#*:}
  mkdir -p "$root/$(dirname "$dst")"
  cp "$src" "$root/$dst"
done
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$out" .
echo "busybox-image: wrote $out ($(du -h "$out" | cut -f1))"
