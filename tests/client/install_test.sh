#!/usr/bin/env bash
# install_test.sh — libparley as an app developer gets it: installs the
# build tree into a temp prefix (cmake --install), checks what is there
# (public header only, shared and static libraries, parley.pc, the CMake
# package), then builds tests/client/consumer/main.c against the installed
# copy alone in three ways and runs each: pkg-config with the shared
# library, pkg-config --static with the static one, and find_package(parley)
# with parley::parley and parley::parley_static.
#
#   install_test.sh BUILD_DIR CONSUMER_DIR [EXTRA_CFLAGS]
#
# With PARLEY_ADDR and PARLEY_SMS_FILE set (under with_parleyd.py) the
# programs also talk to the server.
set -euo pipefail
build=$1
src=$2
flags=${3:-}
tmp=$(mktemp -d /tmp/parley-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

echo "-- cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
libdir=$prefix/lib
for f in include/parley/parley.h lib/libparley.so lib/libparley.a lib/pkgconfig/parley.pc \
         lib/cmake/parley/parleyConfig.cmake lib/cmake/parley/parleyConfigVersion.cmake \
         lib/cmake/parley/parleyTargets.cmake; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f was not installed"; cat "$tmp/install.log"; exit 1; }
done
headers=$(cd "$prefix/include" && find . -type f | sort)
[ "$headers" = "./parley/parley.h" ] || { echo "FAIL: installed headers: $headers"; exit 1; }
# the shared library exports the public API and nothing else
leaked=$(nm -D --defined-only "$libdir/libparley.so" | awk '$3 !~ /^parley_/ && $3 != "PARLEY_0" {print $3}')
[ -z "$leaked" ] || { echo "FAIL: libparley.so exports $leaked"; exit 1; }

export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion parley)" = "0.1.0" ] || { echo "FAIL: pkg-config parley version"; exit 1; }
cc=${CC:-cc}
echo "-- pkg-config, shared"
# shellcheck disable=SC2086,SC2046
$cc -std=c17 -Wall -Wextra -Werror $flags "$src/main.c" $(pkg-config --cflags --libs parley) \
  -Wl,-rpath,"$libdir" -o "$tmp/app_pc"
deps=$(ldd "$tmp/app_pc")
case $deps in *"$libdir/libparley.so"*) ;; *) echo "FAIL: app_pc does not use the installed libparley.so"; exit 1 ;; esac
"$tmp/app_pc"
echo "-- pkg-config --static, static"
# shellcheck disable=SC2086,SC2046
$cc -std=c17 -Wall -Wextra -Werror $flags "$src/main.c" $(pkg-config --cflags parley) "$libdir/libparley.a" \
  $(pkg-config --static --libs parley | sed 's/-lparley\b//') -o "$tmp/app_pc_static"
deps=$(ldd "$tmp/app_pc_static")
case $deps in *libparley*) echo "FAIL: app_pc_static uses a shared libparley"; exit 1 ;; esac
"$tmp/app_pc_static"
echo "-- find_package(parley): parley::parley and parley::parley_static"
cmake -S "$src" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="$flags" >"$tmp/cmake.log" ||
  { cat "$tmp/cmake.log"; exit 1; }
cmake --build "$tmp/cmake" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
"$tmp/cmake/app_shared"
"$tmp/cmake/app_static"
echo "PASS client.install"
