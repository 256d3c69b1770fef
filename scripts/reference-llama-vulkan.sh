#!/usr/bin/env bash
# Builds the pinned llama.cpp with its in-tree Vulkan backend (ggml-vulkan: the peer ggvk is measured against),
# cooperative-matrix paths included, into $GGVK_CACHE/llama.cpp-0.3.36/build-vulkan (reused when present).
# Bookworm's Vulkan headers and glslc are too old for it, so Debian trixie's glslc, libshaderc and Vulkan headers
# are unpacked into a private prefix and glslc runs through that prefix's own dynamic loader.
# Prints the bin directory on its last line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
SRC=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" --source-only | tail -n 1)
BASE="$GGVK_CACHE/llama.cpp-0.3.36"
BUILD="$BASE/build-vulkan"
PREFIX="$GGVK_CACHE/trixie-prefix"
TARGETS=(test-backend-ops llama-completion llama-bench llama-perplexity)

if [ ! -x "$PREFIX/usr/bin/glslc" ] || ! ls "$PREFIX"/usr/share/cmake/SPIRV-Headers*/SPIRV-HeadersConfig.cmake >/dev/null 2>&1; then
  echo "reference-vulkan: fetching trixie's glslc, libshaderc and Vulkan headers" >&2
  APT="$GGVK_CACHE/trixie-apt"
  mkdir -p "$APT/lists/partial" "$APT/debs" "$PREFIX"
  echo "deb http://deb.debian.org/debian trixie main" >"$APT/sources.list"
  o=(-o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=-" -o "Dir::State::Lists=$APT/lists"
     -o "Dir::Cache=$APT/cache" -o "APT::Architecture=amd64")
  mkdir -p "$APT/cache/archives/partial"
  apt-get "${o[@]}" update -qq >&2
  (cd "$APT/debs" && apt-get "${o[@]}" download glslc libshaderc1 libc6 libgcc-s1 libstdc++6 libvulkan-dev spirv-headers >&2)
  for f in "$APT"/debs/*.deb; do dpkg -x "$f" "$PREFIX"; done
fi
WRAP="$PREFIX/glslc-wrapper"
cat >"$WRAP" <<WRAPPER
#!/bin/sh
exec "$PREFIX/usr/lib64/ld-linux-x86-64.so.2" --library-path "$PREFIX/usr/lib/x86_64-linux-gnu:$PREFIX/lib/x86_64-linux-gnu" "$PREFIX/usr/bin/glslc" "\$@"
WRAPPER
chmod +x "$WRAP"
[ -e "$PREFIX/usr/lib64/ld-linux-x86-64.so.2" ] || { mkdir -p "$PREFIX/usr/lib64"; ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$PREFIX/usr/lib64/ld-linux-x86-64.so.2"; }
"$WRAP" --version >&2

have_all=1
for t in "${TARGETS[@]}"; do [ -x "$BUILD/bin/$t" ] || have_all=0; done
if [ "$have_all" = 0 ]; then
  echo "reference-vulkan: building ${TARGETS[*]} with GGML_VULKAN=ON in $BUILD" >&2
  cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_VULKAN=ON \
    -DVulkan_INCLUDE_DIR="$PREFIX/usr/include" -DVulkan_GLSLC_EXECUTABLE="$WRAP" -DCMAKE_PREFIX_PATH="$PREFIX/usr" \
    -DVulkan_LIBRARY="$(ls /usr/lib/x86_64-linux-gnu/libvulkan.so.1)" >&2
  cmake --build "$BUILD" --target "${TARGETS[@]}" -j "$(nproc)" >&2
fi
echo "$BUILD/bin"
