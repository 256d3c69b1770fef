#!/usr/bin/env bash
# Installs ggvk as a C library into PREFIX (default /usr/local), the way a Rust C-ABI library is packaged:
#   PREFIX/include/ggvk.h
#   PREFIX/LIBDIR/libggvk.so.X.Y.Z, libggvk.so.X -> libggvk.so.X.Y.Z (the soname), libggvk.so -> libggvk.so.X
#   PREFIX/LIBDIR/pkgconfig/ggvk.pc              pkg-config --cflags --libs ggvk
#   PREFIX/LIBDIR/cmake/ggvk/ggvkConfig*.cmake   find_package(ggvk) -> imported target ggvk::ggvk
#   PREFIX/bin/ggvk                              the command-line tool (ggvk info, ggvk bench)
#   scripts/install.sh [PREFIX]     env: LIBDIR (default lib), DESTDIR (staging root, prepended to every path),
#                                   GGVK_INSTALL_NO_BUILD=1 (install what is built, skip `cargo build --release`)
# For llama.cpp, GGML_BACKEND_PATH=PREFIX/LIBDIR/libggvk.so loads the installed library as a ggml backend.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
PREFIX=${1:-/usr/local}
case "$PREFIX" in /*) ;; *) PREFIX="$(pwd)/$PREFIX" ;; esac
PREFIX=${PREFIX%/}
LIBDIR=${LIBDIR:-lib}
DEST="${DESTDIR:-}$PREFIX"

VERSION=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([0-9][0-9.]*\)".*/\1/p' "$GGVK_ROOT/Cargo.toml" | head -n 1)
MAJOR=${VERSION%%.*}
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "install: cannot read the version from Cargo.toml" >&2; exit 1; }
# from PREFIX/LIBDIR/cmake/ggvk back to PREFIX
RELPREFIX=../..
IFS=/ read -ra parts <<<"$LIBDIR"
for p in "${parts[@]}"; do [ -n "$p" ] && RELPREFIX+=/..; done

if [ "${GGVK_INSTALL_NO_BUILD:-0}" != 1 ]; then
  (cd "$GGVK_ROOT" && cargo build --release >&2)
fi
BUILT="$CARGO_TARGET_DIR/release"
soname=$(readelf -d "$BUILT/libggvk.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" != "libggvk.so.$MAJOR" ]; then
  echo "install: $BUILT/libggvk.so has soname '$soname', expected libggvk.so.$MAJOR (rebuild: cargo build --release)" >&2
  exit 1
fi

subst() {  # template -> file
  sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@LIBDIR@|$LIBDIR|g" -e "s|@VERSION@|$VERSION|g" -e "s|@MAJOR@|$MAJOR|g" \
    -e "s|@RELPREFIX@|$RELPREFIX|g" "$1" >"$2"
  chmod 644 "$2"
}
install -d "$DEST/include" "$DEST/$LIBDIR/pkgconfig" "$DEST/$LIBDIR/cmake/ggvk" "$DEST/bin"
install -m 644 "$GGVK_ROOT/include/ggvk.h" "$DEST/include/ggvk.h"
install -m 755 "$BUILT/libggvk.so" "$DEST/$LIBDIR/libggvk.so.$VERSION"
ln -sfn "libggvk.so.$VERSION" "$DEST/$LIBDIR/libggvk.so.$MAJOR"
ln -sfn "libggvk.so.$MAJOR" "$DEST/$LIBDIR/libggvk.so"
install -m 755 "$BUILT/ggvk" "$DEST/bin/ggvk"
subst "$GGVK_ROOT/packaging/ggvk.pc.in" "$DEST/$LIBDIR/pkgconfig/ggvk.pc"
subst "$GGVK_ROOT/packaging/ggvkConfig.cmake.in" "$DEST/$LIBDIR/cmake/ggvk/ggvkConfig.cmake"
subst "$GGVK_ROOT/packaging/ggvkConfigVersion.cmake.in" "$DEST/$LIBDIR/cmake/ggvk/ggvkConfigVersion.cmake"
echo "install: ggvk $VERSION into $DEST (libggvk.so.$VERSION, soname libggvk.so.$MAJOR)" >&2
