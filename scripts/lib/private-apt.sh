# Sourced by the build scripts: download Debian packages with a private apt state (nothing is
# installed, the machine's apt state is untouched), from the mirror this machine already uses.
#
#   private_apt_download APT_DIR SUITES DEST PACKAGE...
# SUITES is one suite or several separated by spaces ("sid bookworm"): one private apt state holds
# them all, so pinned versions from each can be downloaded in one call.
# Writes the .deb files into DEST; calls `say` (the caller's) for progress and errors; exits 1 on failure.
private_apt_download() {
  local apt_dir=$1 suites=$2 dest=$3 mirror keyring suite
  shift 3
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/sources.list.d" "$dest"
  mirror=$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i !~ /security/) {print $i; exit}}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || { say "no Debian mirror found in /etc/apt sources; add one"; exit 1; }
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$keyring" ] || { say "missing $keyring: apt-get install debian-archive-keyring"; exit 1; }
  : > "$apt_dir/sources.list"
  for suite in $suites; do printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$suite" >> "$apt_dir/sources.list"; done
  local apt_opts=(-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d" -o "Dir::Cache::archives=$apt_dir/archives"
    -o "Dir::State::status=/dev/null" -o "Debug::NoLocking=1" -o "APT::Get::List-Cleanup=0")
  say "apt-get update ($suites, private state in $apt_dir); then $# packages"
  apt-get -q "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1 || { cat "$apt_dir/update.log" >&2; say "apt-get update failed (log above)"; exit 1; }
  (cd "$dest" && apt-get -q "${apt_opts[@]}" download "$@" >"$apt_dir/download.log" 2>&1) \
    || { cat "$apt_dir/download.log" >&2; say "apt-get download $* failed (a pinned version may have left the archive)"; exit 1; }
}
