#!/usr/bin/env bash
# Builds a Go toolchain image from Debian's golang-go (Go 1.19) and busybox-static, without any
# registry: what `FROM golang:1.19` needs for multi-stage builds on a machine that cannot pull.
#
#   deploy/go-toolchain-image.sh OUT.tar [NAME:TAG]      (default name golang:1.19)
#
# OUT.tar is a docker-archive (what `docker save` writes: manifest.json, the config JSON and one
# layer.tar), so the image keeps its config (ENV PATH, GOROOT, GOPATH, CGO_ENABLED, WORKDIR):
#
#   hoist image load -i OUT.tar      podman load -i OUT.tar      docker load -i OUT.tar
#
# The image, one layer: busybox (sh and the usual applets; see deploy/busybox-image.sh) plus the
# toolchain at Debian's path /usr/lib/go-1.19 (so the precompiled standard library in pkg/ stays
# up to date: `go build` does not recompile it), with /usr/local/go linking to it as in the
# official image, and the shared libraries the `go` command itself is linked against. Left out to
# keep it small: the sources of the toolchain's own commands (src/cmd), every testdata directory,
# the precompiled packages of the commands (pkg/linux_amd64/cmd), test/, api/, misc/, docs, and
# the tools a build never runs (pprof, trace, doc, fix, api, objdump, addr2line, nm, dist).
# No C compiler: CGO_ENABLED=0.
#
# No GOCACHE: Go's default is $HOME/.cache/go-build, and HOME comes from /etc/passwd (root's is
# /root) in Hoist as in runc.
set -euo pipefail

out=${1:?usage: go-toolchain-image.sh OUT.tar [NAME:TAG]}
name=${2:-golang:1.19}
goroot=/usr/lib/go-1.19
if [ ! -x "$goroot/bin/go" ]; then
  echo "go-toolchain-image: $goroot/bin/go not found; install it with: apt-get install -y golang-go" >&2
  exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"
# The busybox root filesystem, unpacked as the base of the single layer.
"$here/busybox-image.sh" "$work/busybox.tar" >/dev/null
tar -C "$root" -xf "$work/busybox.tar"
rm "$work/busybox.tar"

# The toolchain. Debian keeps src/, api/, misc/ and test/ under /usr/share/go-1.19 with symlinks
# from $goroot; the image gets real directories at $goroot.
g=$root$goroot
mkdir -p "$g/bin" "$g/pkg/tool/linux_amd64" "$g/pkg/linux_amd64" "$root/usr/local" "$root/go/bin" "$root/go/src"
cp -a "$goroot/VERSION" "$g/"
cp -a "$goroot/bin/go" "$goroot/bin/gofmt" "$g/bin/"
cp -a "$goroot/pkg/include" "$g/pkg/"
for tool in compile link asm pack buildid cgo cover vet test2json; do
  cp -a "$goroot/pkg/tool/linux_amd64/$tool" "$g/pkg/tool/linux_amd64/"
done
tar -C "$goroot/pkg/linux_amd64" --exclude=./cmd -cf - . | tar -C "$g/pkg/linux_amd64" -xf -
tar -C "$goroot/src/" --exclude=./cmd --exclude=testdata -cf - . | (mkdir -p "$g/src" && tar -C "$g/src" -xf -)
ln -s "$goroot" "$root/usr/local/go"
# The `go` command is dynamically linked (Debian builds it with cgo): its libraries at the paths
# ldd names, as files.
for lib in $(ldd "$goroot/bin/go" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
chmod 1777 "$root/tmp"
chmod 1777 "$root/go" "$root/go/bin" "$root/go/src"

# The layer (reproducible: sorted names, fixed times and owners), then the config and manifest.
layer=$work/layer.tar
tar --sort=name --mtime=@1680825600 --numeric-owner --owner=0 --group=0 -C "$root" -cf "$layer" .
diff_id=$(sha256sum "$layer" | cut -d' ' -f1)
version=$(head -n1 "$goroot/VERSION")
path=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
config=$(printf '%s' \
  '{"architecture":"amd64","os":"linux","created":"2023-04-07T00:00:00Z",' \
  '"config":{"Env":["PATH='"$path"'","GOROOT='"$goroot"'","GOPATH=/go",' \
  '"CGO_ENABLED=0","GOLANG_VERSION='"${version#go}"'"],"WorkingDir":"/go","Cmd":["sh"]},' \
  '"rootfs":{"type":"layers","diff_ids":["sha256:'"$diff_id"'"]},' \
  '"history":[{"created":"2023-04-07T00:00:00Z","created_by":"deploy/go-toolchain-image.sh: busybox-static and Debian golang-go ('"$version"')"}]}')
config_id=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
arch=$work/archive
mkdir -p "$arch/$diff_id"
mv "$layer" "$arch/$diff_id/layer.tar"
printf '%s' "$config" > "$arch/$config_id.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
  "$config_id" "$name" "$diff_id" > "$arch/manifest.json"
tar --sort=name --mtime=@1680825600 --numeric-owner --owner=0 --group=0 -C "$arch" -cf "$out" manifest.json "$config_id.json" "$diff_id"
echo "go-toolchain-image: wrote $out ($name, $version, $(du -h "$out" | cut -f1))"
