#!/usr/bin/env bash
# A real LuaRocks repository on disk for the `pkg` tests and benchmarks, built from
# real upstream rock sources: the upstream tarballs inside Debian's source packages
# (fetched with a private apt configuration that adds the deb-src line) and the Lua
# files of Debian's lua-penlight and lua-dkjson binary packages. Upstream rockspecs
# are used where the tarball carries one (with `version` and `source` set to the
# tarball); crafted rocks add conflicts, a bad hash, a build failure, a cycle, a
# slow `command` build, a `make` build, a `cmake` build, commands (bin wrappers),
# C modules found by rockspec 3.0 autodetection, a LuaRocks build back-end rock
# (luarocks-build-demo) and a rock built by it, and binary rocks (.linux-x86_64.rock,
# .all.rock) packed by Debian's `luarocks pack` from a tree it installed. The
# manifest is written by Debian's `luarocks-admin make-manifest`.
#
# Output: target/rocks/repo/ (manifest, *.rockspec, *.src.rock, sources/).
# Idempotent and fast when done: a stamp records the recipe version.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD/target/rocks
REPO=$ROOT/repo
STAMP=$ROOT/stamp
RECIPE=11
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$RECIPE" ] && [ -f "$REPO/manifest" ]; then
  exit 0
fi

for tool in luarocks-admin zip python3 apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "rocks.sh: $tool is missing (apt-get install luarocks zip)" >&2; exit 1; }
done

# --- 1. Upstream sources through a private apt configuration -------------------
APT=$ROOT/apt
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$ROOT/debs"
cat >"$APT/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm main
EOF
APTOPT=(-q -o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o Debug::NoLocking=1
  -o APT::Sandbox::User=root)
SOURCES=(lua-inspect lua-lpeg lua-filesystem luasocket lua-cjson lua-argparse lua-say
  lua-luassert lua-ansicolors lua-term lua-bit32 lua-coxpcall lua-mediator)
BINARIES=(lua-penlight lua-dkjson)
need_fetch=0
for s in "${SOURCES[@]}"; do
  ls "$ROOT/debs/${s}_"*.orig.tar.* >/dev/null 2>&1 || need_fetch=1
done
for b in "${BINARIES[@]}"; do
  ls "$ROOT/debs/${b}_"*.deb >/dev/null 2>&1 || need_fetch=1
done
if [ $need_fetch = 1 ]; then
  apt-get "${APTOPT[@]}" update >/dev/null
  # Only the upstream (orig) tarballs are needed; a missing Debian patch tarball
  # on the mirror makes apt-get complain but leaves the orig tarballs in place.
  (cd "$ROOT/debs" && apt-get "${APTOPT[@]}" source --download-only "${SOURCES[@]}" >/dev/null 2>&1 || true)
  (cd "$ROOT/debs" && apt-get "${APTOPT[@]}" download "${BINARIES[@]}" >/dev/null)
fi
for s in "${SOURCES[@]}"; do
  ls "$ROOT/debs/${s}_"*.orig.tar.* >/dev/null 2>&1 ||
    { echo "rocks.sh: could not download the upstream tarball of Debian source package $s" >&2; exit 1; }
done

# --- 2. Rocks ------------------------------------------------------------------
rm -rf "$REPO" "$ROOT/work"
mkdir -p "$REPO/sources" "$ROOT/work"
python3 - "$ROOT" <<'PY'
import glob, io, os, re, shutil, subprocess, sys, tarfile, zipfile
root = sys.argv[1]
repo, work, debs = f"{root}/repo", f"{root}/work", f"{root}/debs"

def orig(src):
    return glob.glob(f"{debs}/{src}_*.orig.tar.*")[0]

def topdir(tarball):
    with tarfile.open(tarball) as t:
        return t.getnames()[0].split("/")[0]

def member(tarball, path):
    with tarfile.open(tarball) as t:
        return t.extractfile(f"{topdir(tarball)}/{path}").read().decode()

def src_rock(name, version, rockspec, archive_path, archive_name):
    """A .src.rock: the rockspec and the source archive, zipped (as `luarocks pack`)."""
    with zipfile.ZipFile(f"{repo}/{name}-{version}.src.rock", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}-{version}.rockspec", rockspec)
        z.write(archive_path, archive_name)
    with open(f"{repo}/{name}-{version}.rockspec", "w") as f:
        f.write(rockspec)

def override(name, version, archive_name, dirname, extra=""):
    # Rockspecs are Lua: later assignments win, so the upstream text stays intact.
    return (f"\n-- bioxen test mirror: the source is the upstream tarball shipped with this rock\n"
            f"package = {name!r}\nversion = {version!r}\n"
            f"source = {{ url = {archive_name!r}, dir = {dirname!r} }}\n{extra}")

def upstream(src, name, version, rockspec_path=None, text=None, deps=None, extra=""):
    tb = orig(src)
    archive_name = os.path.basename(tb)
    body = text if text is not None else member(tb, rockspec_path)
    extra += "" if deps is None else "dependencies = { %s }\n" % ", ".join(repr(d) for d in deps)
    src_rock(name, version, body + override(name, version, archive_name, topdir(tb), extra), tb, archive_name)

upstream("lua-inspect", "inspect", "3.1.1-1", text='''package = "inspect"
description = { summary = "Lua table visualizer, ideal for debugging", license = "MIT",
  homepage = "https://github.com/kikito/inspect.lua" }
dependencies = { "lua >= 5.1" }
build = { type = "builtin", modules = { inspect = "inspect.lua" } }
''')
upstream("lua-lpeg", "lpeg", "1.0.2-1", text='''package = "LPeg"
description = { summary = "Parsing Expression Grammars For Lua", license = "MIT/X11",
  homepage = "http://www.inf.puc-rio.br/~roberto/lpeg.html" }
dependencies = { "lua >= 5.1" }
build = { type = "builtin", modules = {
  lpeg = { "lpcap.c", "lpcode.c", "lpprint.c", "lptree.c", "lpvm.c" },
  re = "re.lua" } }
''')
upstream("lua-filesystem", "luafilesystem", "1.8.0-1", "luafilesystem-scm-1.rockspec")
upstream("luasocket", "luasocket", "3.1.0-1", "luasocket-scm-3.rockspec")
upstream("lua-cjson", "lua-cjson", "2.1.0-1", "lua-cjson-2.1.0-1.rockspec")
upstream("lua-argparse", "argparse", "0.7.1-1", "argparse-scm-2.rockspec")
upstream("lua-say", "say", "1.4.1-1", "rockspecs/say-1.4.1-1.rockspec")
upstream("lua-luassert", "luassert", "1.9.0-1", "rockspecs/luassert-1.9.0-1.rockspec")
upstream("lua-ansicolors", "ansicolors", "1.0.2-1", "ansicolors-1.0-1.rockspec")
upstream("lua-term", "lua-term", "0.7-1", "lua-term-0.7-1.rockspec")
upstream("lua-bit32", "bit32", "5.3.0-1", "bit32-scm-1.rockspec")
upstream("lua-coxpcall", "coxpcall", "1.17.0-1", "rockspec/coxpcall-1.17.0-1.rockspec")
upstream("lua-mediator", "mediator_lua", "1.1.2-0", "mediator_lua-1.1.2-0.rockspec")
# An older say (same upstream files, older rockspec) gives resolution a choice.
upstream("lua-say", "say", "1.3-1", "rockspecs/say-1.3-1.rockspec",
         extra="build = { type = 'builtin', modules = { say = 'src/say/init.lua' } }\n")

# Penlight and dkjson: the Lua files of Debian's binary packages, packed as upstream tarballs.
def from_deb(pkg, name, version, summary, deps, prefix="usr/share/lua/5.1"):
    deb = glob.glob(f"{debs}/{pkg}_*.deb")[0]
    out = f"{work}/{pkg}"
    subprocess.run(["dpkg-deb", "-x", deb, out], check=True)
    base = f"{out}/{prefix}"
    upver = version.rsplit("-", 1)[0]
    dirname = f"{name}-{upver}"
    archive = f"{work}/{dirname}.tar.gz"
    modules = {}
    with tarfile.open(archive, "w:gz") as t:
        for dp, _, files in os.walk(base):
            for fn in sorted(files):
                full = os.path.join(dp, fn)
                if os.path.islink(full) or not fn.endswith(".lua"):
                    continue
                rel = os.path.relpath(full, base)
                t.add(full, f"{dirname}/lua/{rel}")
                mod = rel[:-4].replace("/", ".")
                if mod.endswith(".init"):
                    mod = mod[:-5]
                modules[mod] = f"lua/{rel}"
    mods = ",\n    ".join(f"[{m!r}] = {p!r}" for m, p in sorted(modules.items()))
    spec = (f"package = {name!r}\nversion = {version!r}\n"
            f"source = {{ url = {os.path.basename(archive)!r}, dir = {dirname!r} }}\n"
            f"description = {{ summary = {summary!r}, license = 'MIT' }}\n"
            f"dependencies = {{ {', '.join(repr(d) for d in deps)} }}\n"
            f"build = {{ type = 'builtin', modules = {{\n    {mods}\n}} }}\n")
    return spec, archive

spec, archive = from_deb("lua-penlight", "penlight", "1.13.1-1",
                         "Lua utility libraries loosely based on the Python standard libraries",
                         ["lua >= 5.1", "luafilesystem"])
src_rock("penlight", "1.13.1-1", spec, archive, os.path.basename(archive))

# dkjson as a rockspec plus a separate source archive (no .src.rock), fetched by URL.
spec, archive = from_deb("lua-dkjson", "dkjson", "2.6-1", "David Kolf's JSON module for Lua",
                         ["lua >= 5.1, < 5.5"])
shutil.copy(archive, f"{repo}/sources/")
md5 = subprocess.run(["md5sum", archive], capture_output=True, text=True).stdout.split()[0]
spec = spec.replace("source = { url = 'dkjson-2.6.tar.gz'",
                    f"source = {{ url = 'file://{repo}/sources/dkjson-2.6.tar.gz', md5 = '{md5}'")
open(f"{repo}/dkjson-2.6-1.rockspec", "w").write(spec)

# --- crafted rocks -------------------------------------------------------------
def crafted(name, version, files, rockspec_body, rock=True):
    upver = version.rsplit("-", 1)[0]
    dirname = f"{name}-{upver}"
    archive = f"{work}/{dirname}.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{dirname}/{rel}")
            info.size, info.mtime, info.mode = len(data), 1700000000, 0o644
            t.addfile(info, io.BytesIO(data))
    spec = (f"package = {name!r}\nversion = {version!r}\n"
            f"source = {{ url = {os.path.basename(archive)!r}, dir = {dirname!r} }}\n"
            f"description = {{ summary = 'bioxen test rock: {name}', license = 'MIT' }}\n"
            + rockspec_body)
    if rock:
        src_rock(name, version, spec, archive, os.path.basename(archive))
    return spec, archive

def lua_mod(mod, deps=()):
    req = "".join(f"local _{i} = require({d!r})\n" for i, d in enumerate(deps))
    return f"{req}return {{ name = {mod!r} }}\n"

# Two packages whose constraints on `say` exclude each other.
crafted("needs-new-say", "1.0-1", {"nns.lua": lua_mod("nns")},
        "dependencies = { 'say >= 1.4' }\nbuild = { type = 'builtin', modules = { nns = 'nns.lua' } }\n")
crafted("needs-old-say", "1.0-1", {"nos.lua": lua_mod("nos")},
        "dependencies = { 'say ~> 1.3' }\nbuild = { type = 'builtin', modules = { nos = 'nos.lua' } }\n")
# Needs a newer Lua than LuaJIT provides.
crafted("needs-lua54", "1.0-1", {"n54.lua": lua_mod("n54")},
        "dependencies = { 'lua >= 5.4' }\nbuild = { type = 'builtin', modules = { n54 = 'n54.lua' } }\n")
# A dependency cycle (pure Lua, so installable in any order).
crafted("cycle-a", "1.0-1", {"cycle_a.lua": lua_mod("cycle_a")},
        "dependencies = { 'cycle-b' }\nbuild = { type = 'builtin', modules = { cycle_a = 'cycle_a.lua' } }\n")
crafted("cycle-b", "1.0-1", {"cycle_b.lua": lua_mod("cycle_b")},
        "dependencies = { 'cycle-a >= 1.0' }\nbuild = { type = 'builtin', modules = { cycle_b = 'cycle_b.lua' } }\n")
# C that does not compile.
crafted("broken-c", "1.0-1", {"broken.c": "#include <lua.h>\nint luaopen_broken(lua_State *L) { this is not C; }\n"},
        "build = { type = 'builtin', modules = { broken = 'broken.c' } }\n")
# A rockspec whose source archive does not match its md5.
spec, archive = crafted("bad-hash", "1.0-1", {"bad_hash.lua": lua_mod("bad_hash")},
        "build = { type = 'builtin', modules = { bad_hash = 'bad_hash.lua' } }\n", rock=False)
shutil.copy(archive, f"{repo}/sources/")
spec = spec.replace("source = { url = 'bad-hash-1.0.tar.gz'",
                    f"source = {{ url = 'file://{repo}/sources/bad-hash-1.0.tar.gz', md5 = '00000000000000000000000000000000'")
open(f"{repo}/bad-hash-1.0-1.rockspec", "w").write(spec)
# A slow `command` build, for interrupting an install half way.
crafted("slow-build", "1.0-1", {"slow.lua": lua_mod("slow")},
        "build = { type = 'command', build_command = 'sleep 30', install = { lua = { slow = 'slow.lua' } } }\n")
# A `make` build using LuaRocks' variables, with a C module.
crafted("make-demo", "1.0-1", {
    "makedemo.c": '#include "lua.h"\n#include "lauxlib.h"\n'
                  'static int answer(lua_State *L) { lua_pushinteger(L, 42); return 1; }\n'
                  'int luaopen_makedemo(lua_State *L) { lua_newtable(L); lua_pushcfunction(L, answer); '
                  'lua_setfield(L, -2, "answer"); return 1; }\n',
    "Makefile": "all: makedemo.so\n"
                "makedemo.so: makedemo.c\n\t$(CC) $(CFLAGS) -I$(LUA_INCDIR) -shared -o $@ $<\n"
                "install:\n\tmkdir -p $(LIBDIR)\n\tcp makedemo.so $(LIBDIR)/\n"},
    "build = { type = 'make',\n"
    "  build_variables = { CFLAGS = '$(CFLAGS)', LUA_INCDIR = '$(LUA_INCDIR)' },\n"
    "  install_variables = { LIBDIR = '$(LIBDIR)' } }\n")
# A C module linked against a shared library that is gone after the build:
# `pkg health` must report the missing system library.
crafted("needs-syslib", "1.0-1", {
    "gone.c": "int bx_gone_answer(void) { return 7; }\n",
    "usesys.c": '#include "lua.h"\nint bx_gone_answer(void);\n'
                'static int answer(lua_State *L) { lua_pushinteger(L, bx_gone_answer()); return 1; }\n'
                'int luaopen_usesys(lua_State *L) { lua_pushcfunction(L, answer); return 1; }\n'},
    "build = { type = 'command',\n"
    "  build_command = '$(CC) -shared -fPIC -o libbxgone.so gone.c && "
    "$(CC) -shared -fPIC -I$(LUA_INCDIR) -o usesys.so usesys.c -L. -lbxgone',\n"
    "  install = { lib = { usesys = 'usesys.so' } } }\n")
# External dependencies: zlib is found (its variables used), a made-up one is reported.
crafted("uses-zlib", "1.0-1", {
    "usezlib.c": '#include "lua.h"\n#include <zlib.h>\n'
                 'static int v(lua_State *L) { lua_pushstring(L, zlibVersion()); return 1; }\n'
                 'int luaopen_usezlib(lua_State *L) { lua_pushcfunction(L, v); return 1; }\n'},
    "external_dependencies = { ZLIB = { header = 'zlib.h', library = 'z' } }\n"
    "build = { type = 'builtin', modules = { usezlib = { sources = { 'usezlib.c' },\n"
    "  incdirs = { '$(ZLIB_INCDIR)' }, libdirs = { '$(ZLIB_LIBDIR)' }, libraries = { 'z' } } } }\n")
crafted("needs-missing-lib", "1.0-1", {"m.c": "int x;\n"},
    "external_dependencies = { BXNOPE = { header = 'bxnope/bxnope.h' } }\n"
    "build = { type = 'builtin', modules = { m = 'm.c' } }\n")
# Rockspec format 3.0 without build.modules: the modules are found under src/.
crafted("auto-modules", "1.0-1", {
    "src/auto/init.lua": lua_mod("auto"), "src/auto/util.lua": lua_mod("auto.util"),
    "src/auto_top.lua": lua_mod("auto_top"), "spec/auto_spec.lua": "error('not a module')\n"},
    "rockspec_format = '3.0'\nbuild = { type = 'builtin' }\n")
# A git-sourced rock as `luarocks pack` makes it: the .src.rock holds the checkout folder.
scm_spec = ("package = 'scm-style'\nversion = '1.0-1'\n"
            "source = { url = 'git+https://example.invalid/scm-style.git', tag = 'v1.0' }\n"
            "description = { summary = 'bioxen test rock: scm-style', license = 'MIT' }\n"
            "build = { type = 'builtin', modules = { scm_style = 'src/scm_style.lua' } }\n")
with zipfile.ZipFile(f"{repo}/scm-style-1.0-1.src.rock", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("scm-style-1.0-1.rockspec", scm_spec)
    z.writestr("scm-style/src/scm_style.lua", lua_mod("scm_style"))
open(f"{repo}/scm-style-1.0-1.rockspec", "w").write(scm_spec)
# Depends on inspect through a per-platform override (unix only; windows names a missing rock).
crafted("uses-platforms", "1.0-1", {"up.lua": lua_mod("up", ["inspect"])},
        "dependencies = { platforms = { unix = { 'inspect >= 3' }, windows = { 'nonexistent' } } }\n"
        "build = { type = 'builtin', modules = { up = 'up.lua' } }\n")
# A command (build.install.bin): a Lua script that uses the rock's module.
crafted("bin-demo", "1.0-1", {
    "bindemo.lua": "return { greet = function(...) return 'bindemo says ' .. table.concat({...}, ' ') end }\n",
    "bin/bindemo": "#!/usr/bin/env lua\nlocal m = require('bindemo')\nprint(m.greet(...))\n"},
    "build = { type = 'builtin', modules = { bindemo = 'bindemo.lua' }, install = { bin = { 'bin/bindemo' } } }\n")
# Rockspec 3.0 without build.modules: C modules and a command found by LuaRocks' autodetection.
crafted("auto-c", "1.0-1", {
    "src/autoc.c": '#include "lua.h"\n#include "lauxlib.h"\n'
                   'static int answer(lua_State *L) { lua_pushinteger(L, 42); return 1; }\n'
                   'int luaopen_autoc(lua_State *L) { lua_newtable(L); lua_pushcfunction(L, answer); '
                   'lua_setfield(L, -2, "answer"); return 1; }\n',
    "src/autoc/extra.c": '#include "lua.h"\n'
                         'int luaopen_autoc_extra(lua_State *L) { lua_pushliteral(L, "extra"); return 1; }\n',
    "src/autoc_util.lua": lua_mod("autoc_util"),
    "src/spec/ignored.lua": "error('not a module')\n",
    "bin/autoc-tool": "local autoc = require('autoc')\nprint('autoc-tool ' .. autoc.answer())\n"},
    "rockspec_format = '3.0'\nbuild = { type = 'builtin' }\n")
# A `cmake` build of a C module, LuaRocks' variables passed as -D definitions.
crafted("cmake-demo", "1.0-1", {
    "cmakedemo.c": '#include "lua.h"\n'
                   'static int answer(lua_State *L) { lua_pushinteger(L, CMAKEDEMO_ANSWER); return 1; }\n'
                   'int luaopen_cmakedemo(lua_State *L) { lua_pushcfunction(L, answer); return 1; }\n',
    "CMakeLists.txt": "cmake_minimum_required(VERSION 3.10)\nproject(cmakedemo C)\n"
                      "include_directories(${LUA_INCDIR})\nadd_library(cmakedemo MODULE cmakedemo.c)\n"
                      "target_compile_definitions(cmakedemo PRIVATE CMAKEDEMO_ANSWER=${ANSWER})\n"
                      "set_target_properties(cmakedemo PROPERTIES PREFIX \"\")\n"
                      "install(TARGETS cmakedemo DESTINATION ${LUA_LIBDIR})\n"},
    "build = { type = 'cmake', variables = { LUA_INCDIR = '$(LUA_INCDIR)', LUA_LIBDIR = '$(LIBDIR)', ANSWER = '42' } }\n")
# A LuaRocks build back-end (build.type = 'demo' -> the rock luarocks-build-demo, module
# luarocks.build.demo) using LuaRocks' API, and a rockspec 3.0 rock built by it.
crafted("luarocks-build-demo", "1.0-1", {
    "demo.lua": """local fs = require("luarocks.fs")
local dir = require("luarocks.dir")
local path = require("luarocks.path")
local cfg = require("luarocks.core.cfg")
local util = require("luarocks.util")
local helper = require("luarocks.build.demo.helper")
local demo = {}
function demo.run(rockspec, no_install)
  local build = rockspec.build
  util.variable_substitutions(build.variables, rockspec.variables)
  local luadir = path.lua_dir(rockspec.name, rockspec.version)
  fs.make_dir(luadir)
  local f = assert(io.open(dir.path(luadir, build.module .. ".lua"), "w"))
  f:write(helper.module_source(build.variables.GREETING, fs.current_dir()))
  f:close()
  local libdir = path.lib_dir(rockspec.name, rockspec.version)
  fs.make_dir(libdir)
  local v = rockspec.variables
  if not fs.is_file(build.csource) then return nil, "no " .. build.csource end
  local ok = fs.execute(v.CC, "-O2", "-fPIC", "-shared", "-I" .. v.LUA_INCDIR, "-o",
    dir.path(libdir, build.cmodule .. "." .. cfg.lib_extension), build.csource)
  if not ok then return nil, "compiling " .. build.csource .. " failed" end
  return true
end
return demo
""",
    "helper.lua": "return { module_source = function(greeting, cwd)\n"
                  "  return ('return { greeting = %q, built_in = %q }\\n'):format(greeting, cwd:match('[^/]+$'))\n"
                  "end }\n"},
    "build = { type = 'builtin', modules = { ['luarocks.build.demo'] = 'demo.lua',\n"
    "  ['luarocks.build.demo.helper'] = 'helper.lua' } }\n")
crafted("uses-demo-backend", "1.0-1", {
    "democ.c": '#include "lua.h"\n'
               'static int answer(lua_State *L) { lua_pushinteger(L, 99); return 1; }\n'
               'int luaopen_democ(lua_State *L) { lua_pushcfunction(L, answer); return 1; }\n'},
    "rockspec_format = '3.0'\n"
    "build = { type = 'demo', module = 'demo_greeting', cmodule = 'democ', csource = 'democ.c',\n"
    "  variables = { GREETING = 'hello from $(LUA)' } }\n")
# Binary rocks: built and packed below by Debian's luarocks; the mirror keeps
# only their rockspec and the packed rock (no source), so bioxen cannot build them.
crafted("prebuilt-c", "1.0-1", {
    "prebuiltc.c": '#include "lua.h"\n'
                   'static int answer(lua_State *L) { lua_pushinteger(L, 7); return 1; }\n'
                   'int luaopen_prebuiltc(lua_State *L) { lua_pushcfunction(L, answer); return 1; }\n'},
    "build = { type = 'builtin', modules = { prebuiltc = 'prebuiltc.c' } }\n")
crafted("prebuilt-lua", "1.0-1", {"prebuiltlua.lua": lua_mod("prebuiltlua"),
    "bin/prebuilt-tool": "#!/usr/bin/env lua\nprint('prebuilt-tool ' .. require('prebuiltlua').name)\n"},
    "build = { type = 'builtin', modules = { prebuiltlua = 'prebuiltlua.lua' }, install = { bin = { 'bin/prebuilt-tool' } } }\n")
PY

# --- 3. Binary rocks, as `luarocks pack` makes them from an installed tree ----------
luarocks-admin make-manifest "$REPO" >/dev/null
(
  cd "$ROOT/work"
  for rock in prebuilt-c prebuilt-lua; do
    luarocks --lua-version=5.1 --tree "$ROOT/work/lrtree" --only-server="$REPO" install "$rock" \
      >"$ROOT/work/luarocks.log" 2>&1 || { cat "$ROOT/work/luarocks.log" >&2; exit 1; }
    luarocks --lua-version=5.1 --tree "$ROOT/work/lrtree" pack "$rock" \
      >"$ROOT/work/luarocks.log" 2>&1 || { cat "$ROOT/work/luarocks.log" >&2; exit 1; }
    rm "$REPO/$rock-1.0-1.src.rock"
  done
  mv prebuilt-c-1.0-1.linux-x86_64.rock prebuilt-lua-1.0-1.all.rock "$REPO/"
)

# --- 4. Manifest ----------------------------------------------------------------
luarocks-admin make-manifest "$REPO" >/dev/null
echo "$RECIPE" >"$STAMP"
echo "rocks.sh: $(ls "$REPO" | grep -c 'rockspec$') rockspecs in $REPO"
