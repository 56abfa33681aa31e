#!/usr/bin/env bash
# Turns an installed checkout (./install.sh first) into what users download:
#   dist/doodlebox-<version>-linux-x86_64.tar.gz   unpack anywhere, double-click doodlebox.desktop
#   dist/doodlebox_<version>_amd64.deb             sudo apt install ./doodlebox_<version>_amd64.deb
#
#   scripts/package.sh            the CPU flavour: the binary and exactly the libtorch libraries
#                                 it loads (no CUDA backend; it runs on any x86_64 Linux)
#   scripts/package.sh --cuda     the GPU flavour: also libtorch's CUDA backend and the CUDA
#                                 libraries of the wheel (several GB); only the .tar.gz
#   scripts/package.sh --no-deb   the .tar.gz alone
#
# The bundle's layout: bin/doodlebox (stripped, RUNPATH $ORIGIN/../lib), lib/ (the shared
# libraries from the PyTorch wheel, nothing from the build tree and nothing the system has),
# share/ (the launcher and its icon), doodlebox.desktop, FIRST-RUN.txt. Needs patchelf and
# dpkg-deb (Debian packages patchelf and dpkg).
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=cpu
deb=yes
for arg in "$@"; do
    case "$arg" in
        --cuda) flavour=cuda; deb=no ;;
        --no-deb) deb=no ;;
        *) echo "package.sh: unknown option $arg (use --cuda or --no-deb)" >&2; exit 2 ;;
    esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
for tool in patchelf strip ldd tar gzip; do
    command -v "$tool" >/dev/null || { echo "package.sh: $tool is needed (apt-get install patchelf binutils)" >&2; exit 1; }
done
[ "$deb" = no ] || command -v dpkg-deb >/dev/null || { echo "package.sh: dpkg-deb is needed for the .deb (or pass --no-deb)" >&2; exit 1; }

binary=target/release/doodlebox
[ -x "$binary" ] || { echo "package.sh: $binary is missing: run ./install.sh first" >&2; exit 1; }
libtorch=$(sed -n 's/^LIBTORCH = "\(.*\)"$/\1/p' .cargo/config.toml 2>/dev/null || true)
[ -f "$libtorch/lib/libtorch_cpu.so" ] || { echo "package.sh: no libtorch found through .cargo/config.toml: run ./install.sh first" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

name="doodlebox-$version-linux-x86_64"
[ "$flavour" = cuda ] && name="$name-cuda"
stage="dist/stage/$name"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/lib" "$stage/share/applications" "$stage/share/icons/hicolor/scalable/apps"

say "binary: stripped, RUNPATH \$ORIGIN/../lib"
cp "$binary" "$stage/bin/doodlebox"
strip --strip-all "$stage/bin/doodlebox"
patchelf --set-rpath '$ORIGIN/../lib' "$stage/bin/doodlebox"

# The libraries the dynamic loader resolves outside the system's directories: libtorch and
# what it needs from the wheel (c10, gomp, the CUDA runtime that libtorch_cpu links).
bundled_deps() {
    env -i ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
        grep -v -E '^/(usr/)?lib(64)?/' || true
}
say "libraries ($flavour)"
libs=$(bundled_deps "$binary")
if [ "$flavour" = cuda ]; then
    # The CUDA backend and everything it loads, directly or (cuDNN's engines, NVRTC) by
    # dlopen: every library of the wheel's CUDA packages.
    site=$(cd "$libtorch/.." && pwd)
    libs="$libs
$(ls "$libtorch"/lib/libtorch_cuda*.so "$libtorch"/lib/libc10_cuda.so "$libtorch"/lib/libcaffe2_nvrtc.so "$libtorch"/lib/libtorch_global_deps.so 2>/dev/null || true)
$(bundled_deps "$libtorch/lib/libtorch_cuda.so")
$(find "$site/nvidia" -name '*.so*' -type f 2>/dev/null || true)"
fi
echo "$libs" | grep -v '^$' | sort -u | while read -r lib; do
    cp -L "$lib" "$stage/lib/$(basename "$lib")"
done
[ "$flavour" = cuda ] || [ ! -e "$stage/lib/libtorch_cuda.so" ] || { echo "package.sh: the CPU bundle must not carry libtorch_cuda.so" >&2; exit 1; }

say "launcher, icon and first-run text"
flavour_words="CPU (no CUDA backend: training runs on the CPU)"
[ "$flavour" = cuda ] && flavour_words="GPU (libtorch's CUDA backend included: training runs on an NVIDIA GPU when the driver sees one)"
sed -e "s/@VERSION@/$version/" -e "s/@FLAVOUR@/$flavour_words/" assets/packaging/FIRST-RUN.txt >"$stage/FIRST-RUN.txt"
cp assets/packaging/doodlebox.svg "$stage/share/icons/hicolor/scalable/apps/doodlebox.svg"
# The launcher keeps the data in the user's data directory (typed in a shell, doodlebox keeps
# its defaults). Terminal=true: the window shows the join address, the QR code, the setup link
# and how to stop. In the unpacked tarball the desktop file finds the binary beside itself
# (%k is the desktop file's own path); the .deb's is installed under /opt/doodlebox.
data_dir='"${XDG_DATA_HOME:-$HOME/.local/share}/doodlebox"'
desktop_entry() { # $1: the Exec line
    cat <<DESKTOP
[Desktop Entry]
Type=Application
Version=1.0
Name=Doodlebox
GenericName=Drawing collection
Comment=Collect drawings, train a classifier on them and serve it
Exec=$1
Icon=doodlebox
Terminal=true
Categories=Education;Science;
Keywords=drawing;doodle;dataset;classifier;workshop;
DESKTOP
}
desktop_entry "sh -c 'exec \"\$(dirname \"\$1\")/bin/doodlebox\" serve --open --data-dir $data_dir' doodlebox %k" \
    >"$stage/doodlebox.desktop"
chmod +x "$stage/doodlebox.desktop"
desktop_entry "sh -c 'exec /opt/doodlebox/bin/doodlebox serve --open --data-dir $data_dir'" \
    >"$stage/share/applications/doodlebox.desktop"

say "dist/$name.tar.gz"
tar -C "dist/stage" -cf - "$name" | gzip -6 >"dist/$name.tar.gz"
du -b "dist/$name.tar.gz" | awk '{printf "    %.1f MB compressed\n", $1 / 1e6}'
du -sb "$stage" | awk '{printf "    %.1f MB unpacked\n", $1 / 1e6}'

if [ "$deb" = yes ]; then
    debname="doodlebox_${version}_amd64"
    root="dist/stage/$debname"
    say "dist/$debname.deb"
    rm -rf "$root"
    mkdir -p "$root/DEBIAN" "$root/opt/doodlebox" "$root/usr/bin" "$root/usr/share/applications" \
        "$root/usr/share/icons/hicolor/scalable/apps" "$root/usr/share/doc/doodlebox"
    cp -a "$stage/bin" "$stage/lib" "$root/opt/doodlebox/"
    ln -s /opt/doodlebox/bin/doodlebox "$root/usr/bin/doodlebox"
    cp "$stage/share/applications/doodlebox.desktop" "$root/usr/share/applications/"
    cp "$stage/share/icons/hicolor/scalable/apps/doodlebox.svg" "$root/usr/share/icons/hicolor/scalable/apps/"
    cp "$stage/FIRST-RUN.txt" "$root/usr/share/doc/doodlebox/"
    cp LICENSE "$root/usr/share/doc/doodlebox/copyright"
    cat >"$root/DEBIAN/control" <<CONTROL
Package: doodlebox
Version: $version
Architecture: amd64
Maintainer: Doodlebox developers <doodlebox@localhost>
Installed-Size: $(du -sk "$root" | cut -f1)
Depends: libc6 (>= 2.28), libstdc++6, libgcc-s1
Section: education
Priority: optional
Homepage: http://localhost:8080/
Description: crowdsourced drawing-data appliance in one program
 Players draw prompted shapes in a browser; their strokes are stored durably,
 a classifier is trained on them and serves live guesses. No services to set
 up, no internet needed. Start it from the applications menu (Doodlebox) or
 run doodlebox in a terminal.
CONTROL
    dpkg-deb --root-owner-group -Zzstd -z10 --build "$root" "dist/$debname.deb" >/dev/null
    du -b "dist/$debname.deb" | awk '{printf "    %.1f MB\n", $1 / 1e6}'
fi
say "done: $(ls dist/*.tar.gz dist/*.deb 2>/dev/null | tr '\n' ' ')"
