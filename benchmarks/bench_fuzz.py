"""Fuzz every parser and the WAF object splitter with mutated real lines and objects.

``python -m benchmarks.bench_fuzz [--cases 1000000] [--seed 1] [--workers 1]``

Seeds are the log lines and objects under ``data/fixtures/`` (annotations stripped). Each
case is one mutation (bit flips, inserted JSON/CSV syntax, deep brackets, long runs, splices,
truncation, gzip wrapping, ...) drawn from ``(seed, index)`` alone, so any case can be
regenerated from its number. A case runs in-process: ``parse_object`` for one format, or
the WAF parser's object splitter on one line, and its result must be a canonical table that
accounts for the input. A *crash* is an exception that escapes, a result that breaks that
contract, or the worker process dying (a segfault in a native reader): workers are
subprocesses that publish the number of the case they are in, so the parent knows which
input killed one, saves it under ``data/fixtures/poison/`` and goes on from the next case.
``poison`` counts cases the parser failed on but caught per object (``poison_object``): not
crashes, but bugs worth a look; their inputs are saved too.

The resources section (``--no-resources`` skips it) measures, in a fresh subprocess each,
``wafsmith parse`` on a gzip of 1 GiB of zeros without a newline (peak RSS must stay under
512 MiB) and on 1 GiB of newlines per format (CPU seconds), against a baseline measured in
the same run: the same command on a small valid object.
"""

from __future__ import annotations

import argparse
import faulthandler
import gzip
import json
import multiprocessing as mp
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine.parsers import PARSERS, parse_object
from engine.parsers.result import POISON_OBJECT, Tally
from engine.parsers.waf import WafParser
from engine.schema.request import REQUEST_SCHEMA

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "data" / "fixtures"
FOUND = FIXTURES / "poison"
OBJECT_SEED_BYTES = 8 << 10  # whole-object seeds are cut to their first lines: cases stay cheap
TARGETS = (*sorted(PARSERS.names()), "auto", "waf_splitter")
TOKENS = [
    b"null", b"[", b"]", b"{", b"}", b"}{", b'"', b"\\", b"\n", b"\r\n", b"\t", b" ", b"\x00",
    b"\xff", b"\xc3", b"\xe9", b"-", b"#Fields: date time c-ip", b"#Version: 1.0", b"1e400",
    b"99999999999999999999", b'"\\ud800"', b"true", b'{"timestamp":', b"::ffff:1.2.3.4",
    b"fe80::1%eth0", b"[::1]:80", b"%zz", b"%00",
]  # fmt: skip


def seeds() -> list[bytes]:
    """Real lines and whole objects from the fixtures (expectation comments removed)."""
    found: list[bytes] = []
    for path in sorted(FIXTURES.rglob("*")):
        if not path.is_file() or path.suffix in {".md", ".json"} or path.stat().st_size > 1 << 20:
            continue
        data = path.read_bytes()
        if data.startswith(b"\x1f\x8b"):
            try:
                data = gzip.decompress(data)[: 1 << 20]
            except (OSError, EOFError):
                continue
        text = b"\n".join(line for line in data.split(b"\n") if not line.startswith(b"# expect:"))
        found.append(
            text[: text.rfind(b"\n", 0, OBJECT_SEED_BYTES) + 1] or text[:OBJECT_SEED_BYTES]
        )
        found.extend(line + b"\n" for line in text.split(b"\n")[:200] if line.strip())
    return found


def mutate(rng: random.Random, pool: list[bytes]) -> bytes:
    """One to four mutations of a seed (or of two spliced seeds)."""
    data = bytearray(rng.choice(pool))
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(10)
        at = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip bits
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert a token that means something to a reader
            data[at:at] = rng.choice(TOKENS)
        elif op == 2 and data:  # delete a range
            data[at : at + rng.randint(1, 64)] = b""
        elif op == 3 and data:  # duplicate a range
            end = min(len(data), at + rng.randint(1, 256))
            data[at:at] = data[at:end]
        elif op == 4:  # deep nesting or a long run
            data[at:at] = rng.choice([b"[", b"{", b'"', b"a", b"\n", b" "]) * rng.choice(
                [10, 1000, 20_000]
            )
        elif op == 5:  # splice another seed in
            other = rng.choice(pool)
            data[at:] = other[rng.randrange(len(other) + 1) :]
        elif op == 6:  # truncate
            del data[at:]
        elif op == 7:  # random bytes
            data[at:at] = rng.randbytes(rng.randint(1, 32))
        elif op == 8:  # a lone value on its own line
            data[at:at] = b"\n" + rng.choice([b"null", b"1", b"[]", b'"x"', b"{", b"}"]) + b"\n"
        else:  # swap a byte for a delimiter
            if data:
                data[rng.randrange(len(data))] = rng.choice(b'\t "{}[],:\n')
    out = bytes(data)
    if rng.random() < 0.1:  # as a gzip object, sometimes cut short
        out = gzip.compress(out, compresslevel=1, mtime=0)
        if rng.random() < 0.5:
            out = out[: rng.randrange(len(out) + 1)]
    return out


def case(seed: int, index: int, pool: list[bytes]) -> tuple[str, bytes]:
    """The target and input of case ``index``: a function of ``(seed, index)`` alone."""
    rng = random.Random(f"{seed}:{index}")
    return rng.choice(TARGETS), mutate(rng, pool)


def run_case(target: str, data: bytes) -> str | None:
    """Run one case; None if the contract held, else what went wrong (or ``poison_object``)."""
    try:
        if target == "waf_splitter":
            line = data.split(b"\n", 1)[0].strip()
            tally = Tally()
            if line:
                WafParser(tally)._split_objects(1, line.decode("utf-8", "replace").encode())
            return None
        result = parse_object(data, fmt=target, max_bad_samples=3)
    except Exception as exc:  # a crash: the point of the harness is to find these
        return f"{type(exc).__name__}: {exc}"[:300]
    if result.table.schema != REQUEST_SCHEMA or result.rows != result.table.num_rows:
        return "contract: the table is not the canonical schema or rows disagree"
    if result.rows == 0 and not result.malformed and data.strip():
        return "contract: input neither read nor counted"
    if POISON_OBJECT in result.malformed:
        return f"{POISON_OBJECT}: {result.error}"
    return None


@dataclass
class Tallies:
    cases: int = 0
    crashes: list[dict] = field(default_factory=list)
    poison: list[dict] = field(default_factory=list)
    by_target: Counter[str] = field(default_factory=Counter)


def _worker(seed: int, start: int, end: int, current, results) -> None:
    """Run cases ``[start, end)``, publishing the current one in ``current`` first."""
    faulthandler.disable()  # a dying worker is expected and reported by the parent
    pool = seeds()
    found: list[tuple[int, str]] = []
    targets: Counter[str] = Counter()
    for index in range(start, end):
        current.value = index
        target, data = case(seed, index, pool)
        targets[target] += 1
        problem = run_case(target, data)
        if problem is not None and len(found) < 1000:
            found.append((index, problem))
    results.put((found, dict(targets)))


def fuzz(cases: int, seed: int = 1, workers: int = 1, save: Path | None = FOUND) -> Tallies:
    """Run ``cases`` cases over ``workers`` subprocesses; crashing inputs are saved in ``save``."""
    ctx = mp.get_context("fork")
    tallies = Tallies()
    pool = seeds()
    bounds = [cases * i // workers for i in range(workers + 1)]
    pending = [(bounds[i], bounds[i + 1]) for i in range(workers) if bounds[i] < bounds[i + 1]]
    while pending:
        running = []
        for start, end in pending:
            current, results = ctx.Value("q", start, lock=False), ctx.Queue()
            proc = ctx.Process(target=_worker, args=(seed, start, end, current, results))
            proc.start()
            running.append((proc, current, results, start, end))
        pending = []
        for proc, current, results, start, end in running:
            got = None
            while got is None and (proc.is_alive() or not results.empty()):
                try:
                    got = results.get(timeout=1.0)
                except Exception:  # queue.Empty: the worker is still going (or dead)
                    continue
            proc.join()
            if got is not None:
                found, targets = got
                tallies.by_target.update(targets)
                tallies.cases += end - start
                for index, problem in found:
                    target, data = case(seed, index, pool)
                    entry = {"case": index, "target": target, "problem": problem}
                    kind = "poison" if problem.startswith(POISON_OBJECT) else "crash"
                    _save(save, entry, data, kind)
                    (tallies.poison if kind == "poison" else tallies.crashes).append(entry)
                continue
            index = current.value  # the worker died inside this case
            target, data = case(seed, index, pool)
            entry = {"case": index, "target": target, "problem": f"exit code {proc.exitcode}"}
            _save(save, entry, data, "crash")
            tallies.crashes.append(entry)
            tallies.cases += index + 1 - start
            tallies.by_target[target] += 1
            if index + 1 < end:
                pending.append((index + 1, end))
    return tallies


def _save(folder: Path | None, entry: dict, data: bytes, kind: str) -> None:
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    name = f"fuzz-{kind}-{entry['target']}-{entry['case']}"
    (folder / f"{name}.poison").write_bytes(data)
    (folder / f"{name}.txt").write_text(json.dumps(entry) + "\n", encoding="utf-8")
    entry["saved"] = str(folder / f"{name}.poison")


# -- resources -------------------------------------------------------------------------------


def _measured_parse(path: Path, *args: str) -> dict:
    """``wafsmith parse PATH ARGS`` in a fresh interpreter: exit code, CPU s, peak RSS MiB."""
    code = (
        "import resource, sys, time\n"
        "from engine.cli.main import main\n"
        "t = time.process_time()\n"
        "rc = main(['parse', *sys.argv[1:]])\n"
        "ru = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(rc, time.process_time() - t, ru.ru_maxrss, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), *args], capture_output=True, cwd=REPO
    )
    last = done.stderr.decode().strip().splitlines()[-1].split()
    summary = json.loads(done.stdout) if done.stdout.strip() else {}
    return {
        "exit": done.returncode,
        "cpu_s": round(float(last[1]), 2),
        "peak_rss_mib": round(int(last[2]) / 1024, 1),
        "malformed": summary.get("malformed"),
    }


def _gzip_of(path: Path, unit: bytes, total: int) -> Path:
    from isal import igzip

    block = unit * ((16 << 20) // len(unit))
    with igzip.open(path, "wb", compresslevel=1) as out:
        for _ in range(total // len(block)):
            out.write(block)
    return path


def resources(gib: float = 1.0) -> dict:
    size = int(gib * (1 << 30))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small = folder / "small.log"
        small.write_bytes(
            b"\n".join(
                line
                for line in (FIXTURES / "alb" / "alb-samples.log").read_bytes().split(b"\n")
                if not line.startswith(b"#")
            )
        )
        baseline = _measured_parse(small)
        bomb = _measured_parse(_gzip_of(folder / "zeros.gz", b"\x00", size), "--format", "waf")
        nl = _gzip_of(folder / "newlines.gz", b"\n", size)
        newlines = {fmt: _measured_parse(nl, "--format", fmt) for fmt in ("auto", *PARSERS.names())}
    return {"baseline_small_object": baseline, "zero_bomb": bomb, "newlines": newlines}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--gib", type=float, default=1.0, help="size of the resource inputs")
    parser.add_argument("--no-resources", action="store_true")
    parser.add_argument("--no-save", action="store_true", help="do not keep crashing inputs")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tallies = fuzz(args.cases, args.seed, args.workers, None if args.no_save else FOUND)
    seconds = time.monotonic() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = {
        "cases": tallies.cases,
        "crashes": len(tallies.crashes),
        "poison_objects": len(tallies.poison),
        "cases_by_target": dict(sorted(tallies.by_target.items())),
        "seconds": round(seconds, 1),
        "cases_per_s": round(tallies.cases / seconds) if seconds else None,
        "peak_rss_mib": round(children / 1024, 1),
        "crash_samples": tallies.crashes[:20],
        "poison_samples": tallies.poison[:20],
    }
    if not args.no_resources:
        report["resources"] = resources(args.gib)
        bomb = report["resources"]["zero_bomb"]
        base = report["resources"]["baseline_small_object"]
        bomb["rss_vs_small_object"] = round(bomb["peak_rss_mib"] / base["peak_rss_mib"], 2)
    print(json.dumps(report, indent=2))
    return 1 if tallies.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
