# Helpers to lay out image root file systems from Debian binaries (sourced by build-images.sh).
# A Debian binary goes in with exactly the shared libraries `ldd` lists for it (the unpacked packages'
# libraries first, then the machine's), at the same paths, so the image needs no package manager.

# add_bin ROOTFS SRC DEST: copies SRC to ROOTFS/DEST with its shared libraries.
add_bin() {
  local rootfs=$1 src=$2 dest=$3 lib
  mkdir -p "$rootfs/$(dirname "$dest")"
  cp -L "$src" "$rootfs/$dest"
  # Static binaries make ldd say "not a dynamic executable" and exit 1: nothing to add then.
  while read -r lib; do
    [ -n "$lib" ] || continue
    local target="$rootfs/${lib#"$DEB_ROOT"}"
    [ -e "$target" ] && continue
    mkdir -p "$(dirname "$target")"
    cp -L "$lib" "$target"
  done < <(LD_LIBRARY_PATH="$DEB_ROOT/usr/lib/x86_64-linux-gnu" ldd "$src" 2>/dev/null \
             | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' || true)
}

# add_busybox ROOTFS: busybox-static as /bin/busybox with every applet linked at its usual path.
add_busybox() {
  local rootfs=$1 applet
  mkdir -p "$rootfs/bin" "$rootfs/sbin" "$rootfs/usr/bin" "$rootfs/usr/sbin"
  cp "$DEB_ROOT/usr/bin/busybox" "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list-full); do
    [ -e "$rootfs/$applet" ] || [ -L "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
  done
}

# add_base ROOTFS: the files every image needs (root user, /tmp, /etc/hosts placeholders).
add_base() {
  local rootfs=$1
  mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/run" "$rootfs/var" "$rootfs/root" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
  chmod 1777 "$rootfs/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
  printf 'hosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
  [ -e "$rootfs/var/run" ] || ln -s /run "$rootfs/var/run"
}
