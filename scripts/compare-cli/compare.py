#!/usr/bin/env python3
"""Run one list of `sagd` commands against two binaries and report every difference.

    python3 scripts/compare-cli/compare.py OLD_BINARY NEW_BINARY [--only NAME...] [--keep DIR]

For each binary, in turn, the cases of commands.txt run in order in a fresh working directory
(a copy of fixtures/), always at the same absolute path, with stdin closed and stdout/stderr
captured (no terminal, so no progress bars). Each case's exit code, stdout, stderr and every
file it created, changed, rewrote or removed are recorded; then the two sides are compared case
by case. What legitimately varies between runs (wall-clock numbers, process ids, dates, the
temporary folder's path) is normalized first; see README.md. Exit status: 0 when everything
matches, 1 when something differs, 2 when the harness itself cannot run.

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import array
import dataclasses
import difflib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_COMMANDS = HERE / "commands.txt"
DEFAULT_FIXTURES = HERE / "fixtures"
DEFAULT_TIMEOUT = 60.0

TEXT_SUFFIXES = {".txt", ".json", ".csv", ".tsv", ".toml", ".md", ".log", ".lock", ".yaml", ".yml"}
BINARY_SUFFIXES = {".npy", ".npz", ".png", ".jpg", ".jpeg", ".safetensors", ".bin", ".pth", ".ckpt"}
MAX_TEXT_BYTES = 4 << 20
DIFF_LINES = 40


# ------------------------------------------------------------------------------------------
# The command list


class HarnessError(Exception):
    """The harness cannot run (exit status 2)."""


@dataclasses.dataclass
class Case:
    name: str
    command: str
    needs: list[str]
    timeout: float | None
    line: int


CASE_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*:\s+(.*)$")


def parse_commands(path: Path) -> tuple[list[str], list[Case]]:
    """The `@setup` lines and the cases of a command file (format: README.md)."""
    setup: list[str] = []
    cases: list[Case] = []
    logical: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.rstrip()
        if not pending:
            start = number
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append((start, (pending + line.strip()) if pending else line.strip()))
        pending = ""
    if pending:
        raise HarnessError(f"{path}:{start}: the last line ends with a continuation backslash")
    seen: set[str] = set()
    for number, line in logical:
        if line.startswith("@setup "):
            setup.append(line[len("@setup "):].strip())
            continue
        m = CASE_RE.match(line)
        if not m:
            raise HarnessError(f"{path}:{number}: expected `NAME: COMMAND` or `NAME [options]: COMMAND`, got: {line}")
        name, options, command = m.group(1), m.group(2) or "", m.group(3)
        if name in seen:
            raise HarnessError(f"{path}:{number}: case `{name}` is defined twice")
        needs: list[str] = []
        timeout = None
        for option in options.split():
            key, _, value = option.partition("=")
            if key == "needs":
                needs += [n for n in value.split(",") if n]
            elif key == "timeout":
                timeout = float(value)
            else:
                raise HarnessError(f"{path}:{number}: unknown case option `{key}` (known: needs, timeout)")
        for need in needs:
            if need not in seen:
                raise HarnessError(f"{path}:{number}: case `{name}` needs `{need}`, which is not defined before it")
        seen.add(name)
        cases.append(Case(name, command, needs, timeout, number))
    return setup, cases


def select_cases(cases: list[Case], patterns: list[str] | None, skip: list[str] | None = None) -> list[Case]:
    """The cases matching any pattern (exact name or shell glob), with what they need, in file
    order; then without those matching a `skip` pattern (and the cases that need them)."""
    if skip:
        dropped: set[str] = set()
        for c in cases:
            if any(fnmatch.fnmatchcase(c.name, p) for p in skip) or any(n in dropped for n in c.needs):
                dropped.add(c.name)
        cases = [c for c in cases if c.name not in dropped]
    if not patterns:
        return cases
    by_name = {c.name: c for c in cases}
    wanted: set[str] = set()
    for pattern in patterns:
        hits = [c.name for c in cases if fnmatch.fnmatchcase(c.name, pattern)]
        if not hits:
            raise HarnessError(f"--only {pattern}: no such case (see --list; --skip may have removed it)")
        wanted.update(hits)
    stack = list(wanted)
    while stack:
        for need in by_name[stack.pop()].needs:
            if need not in wanted:
                wanted.add(need)
                stack.append(need)
    return [c for c in cases if c.name in wanted]


# ------------------------------------------------------------------------------------------
# Normalization of what legitimately varies between runs


TIMING_KEY = (
    r"(?:[A-Za-z0-9]+_)*(?:seconds|secs|wall|wall_s|wall_time|elapsed|elapsed_s|duration|"
    r"duration_s|millis|ms|images_per_s|images_per_sec|img_per_s|per_second|throughput)"
)
JSON_TIMING_RE = re.compile(r'("' + TIMING_KEY + r'"\s*:\s*)-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')
TOML_TIMING_RE = re.compile(r"(?m)^(\s*" + TIMING_KEY + r"\s*=\s*)-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
CSV_TIMING_COLUMN_RE = re.compile(r"^" + TIMING_KEY + r"$")
NUMBER = r"(?<![\w.])(\d+)(?:\.(\d+))?"
DURATION_RE = re.compile(NUMBER + r"(\s?)(ms|µs|us|ns|s|sec|secs|seconds|min|mins|minutes)\b")
RATE_RE = re.compile(NUMBER + r"(\s?)(images/s|img/s|images per second|it/s|steps/s)")
# a date with a time of day (a bare YYYY-MM-DD is left alone: names such as
# pt_inception-2015-12-05 hold one), and a time of day alone
DATE_RE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}| ?UTC)?"
)
TIME_OF_DAY_RE = re.compile(r"\b\d{2}:\d{2}:\d{2}(?:\.\d+)?\b")
THREAD_RE = re.compile(r"thread '([^']*)' \(\d+\)")
PID_RE = re.compile(r"\b(process(?: id)?|pid|PID)(\s*[:=#]?\s*)\d+")
TMP_NAME_RE = re.compile(r"\.\d+(?:-\d+)?\.tmp\b")


def _shape(m: re.Match) -> str:
    """A measured number with its format kept: `12.34 s` -> `<T>.## s`."""
    decimals = "." + "#" * len(m.group(2)) if m.group(2) is not None else ""
    return f"<T>{decimals}{m.group(3)}{m.group(4)}"


class Normalizer:
    def __init__(self, replacements: list[tuple[str, str]]):
        # the longest first, so that a path inside another is replaced as the longer one
        self.replacements = sorted({r for r in replacements if r[0]}, key=lambda r: -len(r[0]))

    def path(self, rel: str) -> str:
        return TMP_NAME_RE.sub(".<PID>.tmp", rel)

    def text(self, s: str, name: str = "") -> str:
        for old, new in self.replacements:
            s = s.replace(old, new)
        s = JSON_TIMING_RE.sub(r"\1<T>", s)
        s = TOML_TIMING_RE.sub(r"\1<T>", s)
        if name.endswith(".csv"):
            s = self._csv(s)
        s = DURATION_RE.sub(_shape, s)
        s = RATE_RE.sub(_shape, s)
        s = DATE_RE.sub("<DATE>", s)
        s = TIME_OF_DAY_RE.sub("<TIME>", s)
        s = THREAD_RE.sub(r"thread '\1' (<TID>)", s)
        s = PID_RE.sub(r"\1\2<PID>", s)
        s = TMP_NAME_RE.sub(".<PID>.tmp", s)
        if name.endswith(".lock"):
            s = re.sub(r"\d+", "<PID>", s)
        return s

    @staticmethod
    def _csv(s: str) -> str:
        lines = s.split("\n")
        if not lines:
            return s
        header = lines[0].split(",")
        columns = [i for i, h in enumerate(header) if CSV_TIMING_COLUMN_RE.match(h.strip())]
        if not columns:
            return s
        out = [lines[0]]
        for line in lines[1:]:
            cells = line.split(",")
            if len(cells) == len(header):
                for i in columns:
                    cells[i] = "<T>"
            out.append(",".join(cells))
        return "\n".join(out)


# ------------------------------------------------------------------------------------------
# Summaries of binary files (for comparing checkpoints by content, and for readable reports)


def summarize_safetensors(data: bytes, norm: Normalizer) -> dict | None:
    if len(data) < 8:
        return None
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        return None
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError:
        return None
    if not isinstance(header, dict):
        return None
    raw_meta = header.pop("__metadata__", {}) or {}
    meta = {k: norm.text(str(v)) for k, v in raw_meta.items()}
    path_normalized = any(meta[k] != str(v) for k, v in raw_meta.items())
    base = 8 + n
    tensors = []
    for name, info in header.items():
        try:
            lo, hi = info["data_offsets"]
            digest = hashlib.sha256(data[base + lo : base + hi]).hexdigest()[:16]
            tensors.append([name, info.get("dtype"), info.get("shape"), digest])
        except (KeyError, TypeError, ValueError):
            tensors.append([name, None, None, None])
    canonical_meta = dict(meta)
    if path_normalized:
        # the checksum covers the metadata, so it follows a normalized path: leave it out
        canonical_meta.pop("checksum", None)
    canonical = hashlib.sha256(
        json.dumps([canonical_meta, tensors], sort_keys=False).encode()
    ).hexdigest()
    return {"metadata": meta, "tensors": tensors, "canonical": canonical}


def summarize_npy(data: bytes) -> dict | None:
    if not data.startswith(b"\x93NUMPY") or len(data) < 10:
        return None
    major = data[6]
    if major == 1:
        (hlen,) = struct.unpack("<H", data[8:10])
        start = 10
    else:
        (hlen,) = struct.unpack("<I", data[8:12])
        start = 12
    header = data[start : start + hlen].decode("latin-1").strip()
    body = data[start + hlen :]
    out: dict = {"header": header, "data_sha256": hashlib.sha256(body).hexdigest()[:16]}
    if "'<f4'" in header and len(body) % 4 == 0 and len(body) <= 64 << 20:
        values = array.array("f")
        values.frombytes(body)
        finite = [v for v in values if v == v and abs(v) != float("inf")]
        out["values"] = len(values)
        out["non_finite"] = len(values) - len(finite)
        if finite:
            out["min"] = min(finite)
            out["max"] = max(finite)
            out["mean"] = sum(finite) / len(finite)
    return out


def summarize_png(data: bytes) -> dict | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    pos = 8
    chunks = []
    idat = bytearray()
    ihdr = None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8].decode("latin-1")
        body = data[pos + 8 : pos + 8 + length]
        chunks.append(kind)
        if kind == "IHDR" and length >= 13:
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            ihdr = {"width": w, "height": h, "bit_depth": depth, "colour_type": colour}
        elif kind == "IDAT":
            idat += body
        pos += 12 + length
    try:
        pixels = hashlib.sha256(zlib.decompress(bytes(idat))).hexdigest()[:16]
    except zlib.error:
        pixels = None
    return {"ihdr": ihdr, "chunks": chunks, "pixels_sha256": pixels}


# ------------------------------------------------------------------------------------------
# Snapshots of the working directory


class Snapshotter:
    def __init__(self, root: Path, norm: Normalizer):
        self.root = root
        self.norm = norm
        self._hashes: dict[tuple, str] = {}

    def take(self) -> dict[str, dict]:
        entries: dict[str, dict] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, self.root)
                st = os.lstat(full)
                if os.path.islink(full):
                    entries[rel] = {"type": "link", "target": os.readlink(full), "mtime": st.st_mtime_ns}
                elif os.path.isdir(full):
                    entries[rel] = {"type": "dir"}
                elif os.path.isfile(full):
                    key = (rel, st.st_size, st.st_mtime_ns, st.st_ino)
                    digest = self._hashes.get(key)
                    if digest is None:
                        digest = self._hash(full)
                        self._hashes[key] = digest
                    entries[rel] = {"type": "file", "size": st.st_size, "mtime": st.st_mtime_ns, "ino": st.st_ino,
                                    "sha256": digest}
                else:
                    entries[rel] = {"type": "other"}
        return entries

    @staticmethod
    def _hash(path: str) -> str:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def describe(self, rel: str, entry: dict) -> dict:
        """What is recorded of one created or changed entry."""
        out = {"type": entry["type"]}
        if entry["type"] == "link":
            out["target"] = self.norm.text(entry["target"])
        if entry["type"] != "file":
            return out
        out["size"] = entry["size"]
        out["sha256"] = entry["sha256"]
        full = self.root / rel
        suffix = Path(rel).suffix.lower()
        try:
            data = full.read_bytes() if entry["size"] <= (256 << 20) else b""
        except OSError:
            return out
        if suffix not in BINARY_SUFFIXES and entry["size"] <= MAX_TEXT_BYTES and b"\0" not in data:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None or suffix in TEXT_SUFFIXES:
                if text is None:
                    text = data.decode("utf-8", errors="replace")
                out["text"] = self.norm.text(text, rel)
                return out
        if suffix == ".safetensors":
            summary = summarize_safetensors(data, self.norm)
            if summary:
                out["safetensors"] = summary
        elif suffix == ".npy":
            summary = summarize_npy(data)
            if summary:
                out["npy"] = summary
        elif suffix == ".png":
            summary = summarize_png(data)
            if summary:
                out["png"] = summary
        return out


def changes(snap: Snapshotter, before: dict, after: dict) -> dict[str, dict]:
    """Entries created, modified, rewritten (same content, written again) or deleted."""
    out: dict[str, dict] = {}
    for rel, entry in after.items():
        old = before.get(rel)
        if old is None:
            change = "created"
        elif old["type"] != entry["type"] or old.get("sha256") != entry.get("sha256") or old.get("target") != entry.get("target"):
            change = "modified"
        elif entry["type"] in ("file", "link") and (old.get("mtime"), old.get("ino")) != (entry.get("mtime"), entry.get("ino")):
            # written again (in place, or a new file renamed over it) with the same bytes
            change = "rewritten"
        else:
            continue
        record = snap.describe(rel, entry)
        record["change"] = change
        out[snap.norm.path(rel)] = record
    for rel, entry in before.items():
        if rel not in after:
            out[snap.norm.path(rel)] = {"type": entry["type"], "change": "deleted"}
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------------------------
# Running one side


def make_env(bindir: Path, work: Path) -> dict[str, str]:
    """A small, fixed environment: no SAGD_* variables (so no FID weights are found), no
    backtraces (their source paths and lines move with any refactor), no colours."""
    return {
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(work / ".home"),
        "TMPDIR": str(work / ".tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "RUST_BACKTRACE": "0",
    }


def run_command(command: str, cwd: Path, env: dict, timeout: float) -> tuple[object, bytes, bytes, float]:
    start = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-c", command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        code: object = proc.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        code = f"timeout after {timeout:g} s"
    # anything the command left running in its own process group goes too
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return code, out, err, time.monotonic() - start


def run_side(label: str, binary: Path, root: Path, fixtures: Path, setup: list[str], cases: list[Case],
             default_timeout: float, quiet: bool) -> dict:
    bindir = root / "bin"
    work = root / "work"
    if work.exists():
        shutil.rmtree(work)
    bindir.mkdir(parents=True, exist_ok=True)
    target = bindir / "sagd"
    if target.exists() or target.is_symlink():
        target.unlink()
    # a copy, at the same path for both sides: what the binary learns of its own path
    # (std::env::current_exe, used to run the stages of `demo` and `experiment`) is then the same
    shutil.copy2(binary, target)
    python = bindir / "python3"
    if not python.exists():
        python.symlink_to(sys.executable)
    shutil.copytree(fixtures, work)
    (work / ".home").mkdir(exist_ok=True)
    (work / ".tmp").mkdir(exist_ok=True)
    env = make_env(bindir, work)
    norm = Normalizer(
        [(str(work), "<WORK>"), (str(root), "<ROOT>"), (str(binary), "<SAGD>"), (str(binary.resolve()), "<SAGD>")]
    )
    for command in setup:
        code, out, err, _ = run_command(command, work, env, default_timeout)
        if code != 0:
            raise HarnessError(f"{label}: setup `{command}` failed ({code}):\n{out.decode(errors='replace')}{err.decode(errors='replace')}")
    snap = Snapshotter(work, norm)
    before = snap.take()
    results = []
    side_start = time.monotonic()
    for i, case in enumerate(cases, 1):
        timeout = case.timeout or default_timeout
        code, out, err, seconds = run_command(case.command, work, env, timeout)
        after = snap.take()
        results.append(
            {
                "name": case.name,
                "command": case.command,
                "exit": code,
                "stdout": norm.text(out.decode("utf-8", errors="replace")),
                "stderr": norm.text(err.decode("utf-8", errors="replace")),
                "files": changes(snap, before, after),
                "seconds": round(seconds, 3),
            }
        )
        before = after
        if not quiet:
            print(f"[{label} {i}/{len(cases)}] {case.name}: exit {code} ({seconds:.1f} s)", file=sys.stderr, flush=True)
    return {
        "label": label,
        "binary": str(binary),
        "binary_sha256": Snapshotter._hash(str(binary)),
        "seconds": round(time.monotonic() - side_start, 1),
        "cases": results,
    }


# ------------------------------------------------------------------------------------------
# Comparing the two sides


def unified(a: str, b: str, what: str) -> list[str]:
    def pretty(s: str) -> list[str]:
        # a long line of JSON (--json output) is diffed one value per line
        stripped = s.strip()
        if stripped[:1] in "{[" and "\n" not in stripped and len(stripped) > 200:
            try:
                return json.dumps(json.loads(stripped.replace("<T>", '"<T>"')), indent=1, ensure_ascii=False).splitlines()
            except ValueError:
                pass
        return s.splitlines()

    lines = list(difflib.unified_diff(pretty(a), pretty(b), f"old/{what}", f"new/{what}", lineterm="", n=2))
    if not lines and a != b:
        lines = [f"(only whitespace or line endings differ: {len(a)} against {len(b)} characters)"]
    if len(lines) > DIFF_LINES:
        lines = lines[:DIFF_LINES] + [f"... ({len(lines) - DIFF_LINES} more diff lines)"]
    return lines


def compare_binary(path: str, a: dict, b: dict) -> tuple[bool, list[str]]:
    """(same, explanation) of two records of one binary file whose bytes differ."""
    if "safetensors" in a and "safetensors" in b:
        sa, sb = a["safetensors"], b["safetensors"]
        if sa["canonical"] == sb["canonical"]:
            return True, []
        lines = [f"checkpoint differs ({a['size']} against {b['size']} bytes):"]
        ma, mb = sa["metadata"], sb["metadata"]
        for key in sorted(set(ma) | set(mb)):
            if ma.get(key) != mb.get(key):
                if key == "config" and key in ma and key in mb:
                    lines.append("  metadata `config`:")
                    lines += ["    " + l for l in unified(ma[key], mb[key], path + ":config")]
                else:
                    lines.append(f"  metadata `{key}`: {str(ma.get(key, '(absent)'))[:120]!r} -> {str(mb.get(key, '(absent)'))[:120]!r}")
        ta = {t[0]: t for t in sa["tensors"]}
        tb = {t[0]: t for t in sb["tensors"]}
        only_a = [n for n in ta if n not in tb]
        only_b = [n for n in tb if n not in ta]
        if only_a:
            lines.append(f"  tensors only in old ({len(only_a)}): {', '.join(only_a[:6])}")
        if only_b:
            lines.append(f"  tensors only in new ({len(only_b)}): {', '.join(only_b[:6])}")
        shape = [n for n in ta if n in tb and ta[n][1:3] != tb[n][1:3]]
        values = [n for n in ta if n in tb and ta[n][1:3] == tb[n][1:3] and ta[n][3] != tb[n][3]]
        if shape:
            lines.append(f"  tensors of another dtype or shape ({len(shape)}): " + ", ".join(
                f"{n} {ta[n][1]}{ta[n][2]} -> {tb[n][1]}{tb[n][2]}" for n in shape[:4]))
        if values:
            lines.append(f"  tensors with other values ({len(values)} of {len(ta)}): {', '.join(values[:6])}")
        if list(ta) != list(tb) and not only_a and not only_b:
            lines.append("  the tensors are stored in another order")
        if len(lines) == 1:
            lines.append("  tensors and metadata are equal: the header's layout or the data offsets differ")
        return False, lines
    if "npy" in a and "npy" in b:
        na, nb = a["npy"], b["npy"]
        lines = [f"array differs ({a['size']} against {b['size']} bytes):"]
        if na["header"] != nb["header"]:
            lines.append(f"  header {na['header']!r} -> {nb['header']!r}")
        stats = [k for k in ("values", "non_finite", "min", "max", "mean") if k in na or k in nb]
        if stats:
            lines.append("  " + ", ".join(f"{k} {na.get(k)!r:.12} -> {nb.get(k)!r:.12}" for k in stats))
        return False, lines
    if "png" in a and "png" in b:
        pa, pb = a["png"], b["png"]
        lines = [f"image differs ({a['size']} against {b['size']} bytes):"]
        if pa["ihdr"] != pb["ihdr"]:
            lines.append(f"  {pa['ihdr']} -> {pb['ihdr']}")
        if pa["pixels_sha256"] == pb["pixels_sha256"]:
            lines.append("  the same pixels, encoded differently (chunks " + ",".join(pa["chunks"]) + " -> " + ",".join(pb["chunks"]) + ")")
        else:
            lines.append("  the pixels differ")
        return False, lines
    return False, [f"binary differs ({a.get('size')} against {b.get('size')} bytes, sha256 {a.get('sha256', '')[:12]} -> {b.get('sha256', '')[:12]})"]


def compare_case(a: dict, b: dict) -> list[str]:
    """The differences of one case, as report lines (empty when identical)."""
    out: list[str] = []
    if a["command"] != b["command"]:
        out.append("the command lines differ (the two records come from different command files)")
    if a["exit"] != b["exit"]:
        out.append(f"exit code: old {a['exit']}, new {b['exit']}")
    for stream in ("stdout", "stderr"):
        if a[stream] != b[stream]:
            out.append(f"{stream} differs:")
            out += ["    " + l for l in unified(a[stream], b[stream], stream)]
    fa, fb = a["files"], b["files"]
    for path in sorted(set(fa) | set(fb)):
        ra, rb = fa.get(path), fb.get(path)
        if ra is None or rb is None:
            present = ra or rb
            side = "old" if ra else "new"
            out.append(f"file {path}: {present['change']} by old only" if side == "old" else f"file {path}: {present['change']} by new only")
            continue
        if ra["change"] != rb["change"] or ra["type"] != rb["type"]:
            out.append(f"file {path}: old {ra['change']} ({ra['type']}), new {rb['change']} ({rb['type']})")
            if ra["type"] != rb["type"] or ra["change"] == "deleted" or rb["change"] == "deleted":
                continue
        if ra["type"] == "link":
            if ra.get("target") != rb.get("target"):
                out.append(f"file {path}: link to {ra.get('target')} -> {rb.get('target')}")
            continue
        if ra["type"] != "file" or ra["change"] == "deleted":
            continue
        if "text" in ra or "text" in rb:
            ta, tb = ra.get("text"), rb.get("text")
            if ta is None or tb is None:
                out.append(f"file {path}: text in one, binary in the other ({ra['size']} against {rb['size']} bytes)")
            elif ta != tb:
                out.append(f"file {path}: content differs:")
                out += ["    " + l for l in unified(ta, tb, path)]
            continue
        if ra["sha256"] == rb["sha256"]:
            continue
        same, lines = compare_binary(path, ra, rb)
        if not same:
            out.append(f"file {path}: " + lines[0])
            out += ["    " + l for l in lines[1:]]
    return out


def report(old: dict, new: dict, stream) -> int:
    """Prints the comparison; returns the number of differing cases."""
    nb = {c["name"]: c for c in new["cases"]}
    differing = []
    identical = 0
    for a in old["cases"]:
        b = nb.get(a["name"])
        if b is None:
            differing.append((a["name"], ["missing on the new side"]))
            continue
        lines = compare_case(a, b)
        if lines:
            differing.append((a["name"], lines))
        else:
            identical += 1
    print(f"old: {old['binary']} (sha256 {old['binary_sha256'][:12]}), {len(old['cases'])} cases in {old['seconds']} s", file=stream)
    print(f"new: {new['binary']} (sha256 {new['binary_sha256'][:12]}), {len(new['cases'])} cases in {new['seconds']} s", file=stream)
    for name, lines in differing:
        case = next(c for c in old["cases"] if c["name"] == name)
        print(f"\n== {name} ==", file=stream)
        print(f"   $ {case['command']}", file=stream)
        for line in lines:
            print("   " + line, file=stream)
    print(f"\n{identical} of {len(old['cases'])} cases identical, {len(differing)} differ"
          + (": " + ", ".join(n for n, _ in differing) if differing else ""), file=stream)
    return len(differing)


# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the cases of commands.txt against two sagd binaries and report every difference.")
    parser.add_argument("old", type=Path, help="the binary from before the change")
    parser.add_argument("new", type=Path, help="the binary after the change")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="only these cases (names or shell globs such as 'train-*'), with the cases they need")
    parser.add_argument("--skip", nargs="+", metavar="NAME",
                        help="leave out these cases (names or globs, e.g. 'demo-*') and the cases that need them")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the working directories (DIR/old, DIR/new), the records (DIR/old.json, DIR/new.json) "
                             "and the report (DIR/report.txt) in DIR, which must be new or empty")
    parser.add_argument("--commands", type=Path, default=DEFAULT_COMMANDS, help="the command file (default: commands.txt beside this script)")
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, help="copied into each working directory (default: fixtures/ beside this script)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per case unless it sets its own (default: %(default)s)")
    parser.add_argument("--list", action="store_true", help="print the selected cases and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-case progress lines on stderr")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    setup, cases = parse_commands(args.commands)
    cases = select_cases(cases, args.only, args.skip)
    if args.list:
        for c in cases:
            print(f"{c.name}: {c.command}")
        return 0
    binaries = []
    for b in (args.old, args.new):
        if not (b.is_file() and os.access(b, os.X_OK)):
            print(f"error: {b} is not an executable file", file=sys.stderr)
            return 2
        binaries.append(b.absolute())

    if args.keep:
        root = args.keep.absolute()
        if root.exists() and any(root.iterdir()):
            print(f"error: --keep {root} exists and is not empty", file=sys.stderr)
            return 2
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="sagd-compare-"))
    sides = []
    try:
        for label, binary in zip(("old", "new"), binaries):
            side = run_side(label, binary, root, args.fixtures.absolute(), setup, cases, args.timeout, args.quiet)
            sides.append(side)
            if args.keep:
                (root / "work").rename(root / label)
                (root / f"{label}.json").write_text(json.dumps(side, indent=1, ensure_ascii=False) + "\n")
            else:
                shutil.rmtree(root / "work")
        differing = report(sides[0], sides[1], sys.stdout)
        if args.keep:
            with open(root / "report.txt", "w", encoding="utf-8") as f:
                report(sides[0], sides[1], f)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
