#!/usr/bin/env bash
# Checks that programs run without the Swift toolchain: every shared library they load is a
# system library from Debian's runtime packages (libc, libm, libstdc++/libgcc, OpenBLAS and LAPACKE
# with their Fortran runtime, zstd, zlib), none is missing, and no run path points into a toolchain.
#   bash scripts/check-standalone.sh BINARY...
set -euo pipefail
allowed='^(linux-vdso|ld-linux-x86-64|ld-linux-aarch64|ld-linux|libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|libopenblas|liblapacke|liblapack|libblas|libtmglib|libgfortran|libquadmath|libzstd|libz)\.so'
status=0
for bin in "$@"; do
  out=$(ldd "$bin" 2>&1) || { echo "$bin: ldd failed: $out"; status=1; continue; }
  while read -r lib _; do
    name=$(basename "$lib")
    if ! [[ $name =~ $allowed ]]; then echo "$bin: needs $lib"; status=1; fi
  done <<<"$out"
  if grep -q "not found" <<<"$out"; then echo "$bin: a library is not found"; status=1; fi
  rp=$(readelf -d "$bin" | sed -n 's/.*\(RUNPATH\|RPATH\).*\[\(.*\)\]/\2/p')
  if [ -n "$rp" ] && [ "$rp" != '$ORIGIN' ]; then echo "$bin: run path $rp"; status=1; fi
done
exit $status
