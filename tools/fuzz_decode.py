"""Fuzz the decoder with mutated .ddc streams whose CRC is recomputed, so that the parser, the entropy decoders and
the forward pass behind the CRC are exercised; anything but ddcodec's own errors, a decode over the time cap or
memory above the cap is a finding.

    python tools/fuzz_decode.py --runs 100000 --out benchmarks/results/fuzz.json     # atheris, coverage-guided
    python tools/fuzz_decode.py --runs 100000 --plain ...                            # random mutations only
    python tools/fuzz_decode.py --runs 100000 --structured ...                       # valid extreme headers

The structured mode writes files whose headers and payload descriptors are valid, with extreme but legal fields
(sides, widths, latent grids, versions, step codes, table lengths and ratios, constants, context models; every
declared table and every bucket), their range-coded words mostly made valid too (the symbols that the descriptors
decode from random words, coded again), so that inputs reach the entropy decoder's rows, the tables, the forward pass
and the re-encode check; it decodes them under ddcodec.format.limits set to --limit-memory-mb and --limit-macs (a quarter
of them through Pillow's Image.open(...).load()), and records each decode's time and traced peak against the cost
model's estimate.

Seeds: small streams of both profiles and coders encoded at start-up. One torch thread; the process's address space
is capped (--memory-mb above the import's baseline) so that an allocation bomb fails instead of swapping.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import struct
import sys
import tempfile
import time
import tracemalloc
import zlib
from collections import Counter
from pathlib import Path

import numpy as np


def seeds() -> list[bytes]:
    """Small valid streams: seed and coded input, range and zstd coders, and a coded stream whose latent grids
    (replaced by correlated integers) use the context model, then the ARM (random weights at step 2^-8)."""
    from dataclasses import replace

    import ddcodec
    from ddcodec.format.architecture import ArmShape
    from ddcodec.format.container import Header, pack
    from ddcodec.format.payload import encode_payload
    from ddcodec.format.reader import read_ints

    rng = np.random.default_rng(0)
    image = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    streams = [ddcodec.encode(image, ratio=6, iters=10, tries=1, input=i, coder=c).data
               for i in ("seed", "coded") for c in ("range", "zstd")]
    header, ints = read_ints(ddcodec.encode(np.tile(image, (4, 4, 1)), ratio=6, iters=5, tries=1).data)
    for t in header.arch.grid_indices:
        ints[t] = np.cumsum(np.round(rng.laplace(0, 0.7, ints[t].shape)), axis=0).astype(np.int64)
    plain = Header(replace(header.arch, arm=None), header.seed, header.coder,
                   header.step_codes[: len(header.step_codes) - len(header.arch.arm_indices)])
    ints = ints[: len(plain.step_codes)]
    arm = Header(replace(plain.arch, arm=ArmShape()), plain.seed, plain.coder, plain.step_codes + (-32,) * 6)
    arm_ints = ints + [np.round(rng.uniform(-0.5, 0.5, s) * 256).astype(np.int64)
                       for s in arm.arch.tensor_shapes()[len(ints):]]
    return streams + [pack(plain, encode_payload(plain, ints)), pack(arm, encode_payload(arm, arm_ints))]


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few random byte edits, insertions, deletions or truncations of the body, then a fresh CRC."""
    body = bytearray(data[:-4])
    for _ in range(rng.randrange(1, 5)):
        op, pos = rng.randrange(5), rng.randrange(len(body) + 1)
        if op == 0 and pos < len(body):
            body[pos] = rng.randrange(256)
        elif op == 1 and pos < len(body):
            body[pos] ^= 1 << rng.randrange(8)
        elif op == 2:
            body[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif op == 3:
            del body[pos : pos + rng.randrange(1, 9)]
        else:
            del body[pos:]
    return with_crc(bytes(body))


EXTREME_SIDES = (1, 1, 2, 3, 5, 8, 16, 17, 33, 64, 100, 255, 256, 1000, 4096, 16383, 16384)
EXTREME_WIDTHS = (1, 1, 2, 3, 8, 16, 40, 64, 255, 512)
EXTREME_LATENTS = (0, 0, 0, 1, 2, 3, 16)
EXTREME_VALUES = (0, 0, 1, -1, 7, 2**24, -(2**24), 2**31, -(2**31), 2**62, -(2**62), 2**63 - 1, -(2**63))
EXTREME_RATIOS = (1, 2, 255, 32768, 60000, 65000, 65534, 65535)
EXTREME_STEPS = (-128, -40, -8, -4, 0, 4, 40, 127)


def _svar(n: int) -> bytes:
    from ddcodec.format.entropy import _put_varint, _zigzag

    out = bytearray()
    _put_varint(out, _zigzag(n))
    return bytes(out)


def _var(n: int) -> bytes:
    from ddcodec.format.entropy import _put_varint

    out = bytearray()
    _put_varint(out, n)
    return bytes(out)


def _varints(values: np.ndarray) -> bytes:
    from ddcodec.format.entropy import _varints as varints

    return varints(values)


def _flat_descriptor(rng: random.Random, n: int, categorical: bool) -> bytes:
    """A constant, geometric or (if allowed) categorical descriptor for n values, with extreme fields."""
    from ddcodec.format.entropy import CATEGORICAL, CONSTANT, GEOMETRIC, MAX_SUPPORT

    kind = rng.choice((CONSTANT, GEOMETRIC, GEOMETRIC) + ((CATEGORICAL,) if categorical else ()))
    if kind == CONSTANT:
        return bytes([CONSTANT]) + _svar(rng.choice(EXTREME_VALUES))
    if kind == GEOMETRIC:
        size = rng.choice((2, 3, 64, 1000, MAX_SUPPORT // 2, MAX_SUPPORT))
        lo = rng.randrange(size)
        centre = rng.choice((0, 0, 5, -(2**24), 2**30))
        return (bytes([GEOMETRIC]) + _svar(centre) + _var(lo) + _var(size - 1 - lo)
                + rng.choice(EXTREME_RATIOS).to_bytes(2, "little"))
    size = min(rng.choice((2, 3, 100, 4096, MAX_SUPPORT)), max(n, 2))
    counts = [0] * size
    for _ in range(min(n, 8)):
        counts[rng.randrange(size)] += n // min(n, 8)
    counts[rng.randrange(size)] += n - sum(counts)
    return bytes([CATEGORICAL]) + _svar(rng.choice((0, -3, 2**20))) + _var(size) + _varints(np.array(counts))


def _context_descriptor(rng: random.Random) -> bytes:
    from ddcodec.format.context import BUCKETS, TAPS
    from ddcodec.format.entropy import CONTEXT

    coefs = bytes(rng.choice((0, 16, 127, 128, 255, 8)) for _ in range(TAPS))
    return bytes([CONTEXT]) + coefs + b"".join(_flat_descriptor(rng, 0, False) for _ in range(BUCKETS))


def _with_version(data: bytes, version: int, layers: int) -> bytes:
    """A version-3 file rewritten as `version` (version 1 has no latent counts), CRC recomputed."""
    body = bytearray(data[:-4])
    body[4] = version
    if version == 1:
        start = 11 + 2 * (layers + 1)
        del body[start : start + layers]
    return with_crc(bytes(body))


def structured(rng: random.Random, limits) -> bytes:
    """A file with a valid header and valid payload descriptors whose fields are extreme but legal; where its cost
    passes `limits`, its range-coded words are made valid too (most of the time)."""
    from ddcodec import BitstreamError, DecodeBudgetError
    from ddcodec.format.architecture import Architecture
    from ddcodec.format.container import Header, pack
    import zstandard

    from ddcodec.format.entropy import RANGE, ZSTD, encode_groups, read_payload
    from ddcodec.format.limits import check_budget

    version, layers = rng.choice((1, 2, 3, 3, 3)), rng.randint(1, 8)
    widths = tuple(rng.choice(EXTREME_WIDTHS) for _ in range(layers + 1))
    latents = tuple(rng.choice(EXTREME_LATENTS) for _ in range(layers)) if version > 1 else ()
    arch = Architecture(rng.choice(EXTREME_SIDES), rng.choice(EXTREME_SIDES), rng.choice((1, 3)), widths,
                        latents if any(latents) else ())
    shapes = arch.tensor_shapes()
    coder = rng.choice((RANGE, RANGE, RANGE, ZSTD))
    header = Header(arch, rng.getrandbits(64), coder,
                    tuple(rng.choice(EXTREME_STEPS) if rng.random() < 0.3 else 0 for _ in shapes))
    sizes = [int(np.prod(s)) for s in shapes]
    try:
        check_budget(arch, limits)
    except DecodeBudgetError:
        return _with_version(pack(header, rng.randbytes(rng.randrange(64))), version, layers)
    if coder == ZSTD:
        width = rng.choice((1, 2, 4))
        peak = min(2 ** (8 * width - 1) - 1, rng.choice((1, 100, 2**20)))
        values = np.random.default_rng(rng.getrandbits(32)).integers(-peak, peak + 1, sum(sizes))
        packed = zstandard.ZstdCompressor(level=1).compress(values.astype(f"<i{width}").tobytes())  # fast, valid
        return _with_version(pack(header, bytes([width]) + packed), version, layers)
    grids = arch.grid_indices
    descriptors = b"".join(_context_descriptor(rng) if t in grids and rng.random() < 0.7
                           else _flat_descriptor(rng, n, True) for t, n in enumerate(sizes))
    payload = descriptors + rng.randbytes(4 * rng.randrange(64))
    shaped = [tuple(s) if t in grids else n for t, (s, n) in enumerate(zip(shapes, sizes))]
    try:
        plan = read_payload(payload, shaped, RANGE, version)
        check_budget(arch, limits, plan.facts)
        if rng.random() < 0.8:
            _, groups, _ = plan.decode_symbols()
            payload = descriptors + encode_groups(groups).astype("<u4").tobytes()
    except (BitstreamError, DecodeBudgetError):
        pass
    return _with_version(pack(header, payload), version, layers)


class Campaign:
    """Decodes inputs and tallies what happened: outcomes by type, the slowest input, peak memory growth, and (with
    `measure`) each decode's CPU time and traced peak against the cost model's estimate."""

    def __init__(self, timeout: float, measure: bool = False, pillow_share: float = 0.0, memory_cap: float = 0.0):
        from ddcodec.decoders.decode import decode_array

        self.decode, self.timeout = decode_array, timeout
        self.measure, self.pillow_share, self.memory_cap = measure, pillow_share, memory_cap
        self.outcomes: Counter[str] = Counter()
        self.slowest = 0.0
        self.records: list[tuple[float, float, float, float]] = []  # CPU s, traced bytes, estimated work, memory
        self.baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.count = 0

    def run(self, data: bytes) -> None:
        from PIL import Image

        from ddcodec import DdcodecError

        self.count += 1
        through_pillow = self.pillow_share and self.count % round(1 / self.pillow_share) == 0
        estimate = self._estimate(data) if self.measure else None
        if self.measure:
            tracemalloc.start()
        start, cpu = time.perf_counter(), time.process_time()
        try:
            self._pillow(data) if through_pillow else self.decode(data)
            self.outcomes["decoded"] += 1
        except DdcodecError as exc:
            self.outcomes[type(exc).__name__] += 1
        except (OSError, SyntaxError, Image.DecompressionBombError) as exc:  # Pillow's refusals
            if through_pillow:
                self.outcomes[f"Pillow {type(exc).__name__}"] += 1
            else:
                self.outcomes[f"FINDING {type(exc).__name__}: {str(exc)[:80]}"] += 1
        except Exception as exc:  # a finding: kept and reported
            self.outcomes[f"FINDING {type(exc).__name__}: {str(exc)[:80]}"] += 1
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        self.slowest = max(self.slowest, elapsed)
        if not self.measure:
            if elapsed > self.timeout:
                self.outcomes["FINDING over the time cap"] += 1
            return
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        self.records.append((cpu, traced, estimate.macs if estimate else 0.0, estimate.memory if estimate else 0.0))
        if cpu > self.timeout:
            self.outcomes["FINDING over the time cap (CPU time)"] += 1
        if elapsed > self.timeout:
            self.outcomes["wall time over the cap (CPU time under it: the machine's load)"] += cpu <= self.timeout
        if self.memory_cap and traced > self.memory_cap:
            self.outcomes["FINDING over the memory cap"] += 1
        if estimate is not None and traced > estimate.memory:
            self.outcomes["FINDING traced peak above the estimate"] += 1

    @staticmethod
    def _pillow(data: bytes) -> None:
        import io

        from PIL import Image

        Image.open(io.BytesIO(data)).load()

    @staticmethod
    def _estimate(data: bytes):
        from ddcodec import DdcodecError
        from ddcodec.format.limits import decode_cost
        from ddcodec.format.reader import read_plan

        try:
            plan = read_plan(data)
            return decode_cost(plan.header.arch, plan.facts)
        except DdcodecError:
            return None

    def _measures(self) -> dict:
        """The CPU times and traced peaks against the estimates."""
        r = np.array(self.records or [(0.0, 0.0, 0.0, 0.0)])
        cpu, traced, work, memory = r.T
        big = work >= 1e8  # below, fixed costs (imports, the thread pool) outweigh the work
        per_work = cpu[big] / work[big] * 1e9
        return {"slowest_decode_cpu_s": round(float(cpu.max()), 4),
                "largest_traced_peak_mb": round(float(traced.max()) / 2**20, 1),
                "worst_traced_peak_over_estimate": round(float((traced / np.maximum(memory, 1))[memory > 0].max(
                    initial=0)), 3),
                "cpu_s_per_1e9_estimated_work (work >= 1e8; median, 99th percentile, max)":
                    [round(float(np.quantile(per_work, q)), 3) for q in (0.5, 0.99, 1.0)] if big.any() else None,
                "largest_estimated_work_of_an_input": float(work[work > 0].max(initial=0))}

    def report(self, runs: int, seconds: float) -> dict:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.baseline) / 1024
        findings = sum(n for k, n in self.outcomes.items() if k.startswith("FINDING"))
        out = {"inputs": runs, "seconds": round(seconds, 1), "outcomes": dict(self.outcomes), "findings": findings,
               "slowest_decode_s": round(self.slowest, 4), "peak_memory_above_baseline_mb": round(peak, 1)}
        if self.measure:
            out.update(self._measures())
            out["load_average_at_report"] = [round(x, 2) for x in os.getloadavg()]
        return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=10000)
    p.add_argument("--timeout", type=float, default=1.0, help="seconds one decode may take")
    p.add_argument("--memory-mb", type=int, default=2048, help="address-space cap above the baseline")
    p.add_argument("--plain", action="store_true", help="random mutations instead of atheris")
    p.add_argument("--structured", action="store_true", help="valid headers with extreme fields instead of atheris")
    p.add_argument("--limit-memory-mb", type=float, default=160, help="structured: ddcodec.format.limits.MAX_MEMORY")
    p.add_argument("--limit-macs", type=float, default=1e10, help="structured: ddcodec.format.limits.MAX_MACS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.structured:
        return run_structured(args)
    corpus = seeds()
    campaign = Campaign(args.timeout)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    usage = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (usage + args.memory_mb * 2**20, hard))
    start, rng = time.perf_counter(), random.Random(0)

    def finish() -> None:
        result = campaign.report(sum(campaign.outcomes.values()) - campaign.outcomes["FINDING over the time cap"],
                                 time.perf_counter() - start)
        result["machine"] = "2-core AMD EPYC, shared with other jobs; one torch thread; decoder: NumPy (ddcodec.decode's CPU default)"
        result["mode"] = "random mutations" if args.plain else "atheris (libFuzzer mutations of the seeds)"
        print(json.dumps(result, indent=1), flush=True)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1) + "\n")

    if args.plain:
        for _ in range(args.runs):
            campaign.run(mutate(rng.choice(corpus), rng))
        finish()
        return 0
    import atheris

    folder = Path(tempfile.mkdtemp(prefix="ddc-fuzz-"))
    for i, data in enumerate(corpus):
        (folder / f"seed{i}.ddc").write_bytes(data)
    count = [0]

    def one(data: bytes) -> None:
        campaign.run(with_crc(data[:-4]) if len(data) > 4 else data)
        count[0] += 1
        if count[0] >= args.runs:  # libFuzzer ends the process without returning: report here
            finish()
            os._exit(0)

    atheris.Setup([sys.argv[0], f"-runs={args.runs + len(corpus)}", "-max_len=65536", str(folder)], one)
    atheris.Fuzz()
    return 0


def run_structured(args) -> int:
    """The structured campaign: args.runs files from `structured`, decoded under the limits given."""
    import ddcodec.format.limits as limits
    import ddcodec.decoders.npdecode as npdecode
    from ddcodec.format.limits import Limits

    limits.MAX_MEMORY, limits.MAX_MACS = int(args.limit_memory_mb * 2**20), args.limit_macs
    npdecode.MAX_THREADS = 1  # one thread: CPU time is the decode's time on one core
    rng = random.Random(args.seed)
    campaign = Campaign(args.timeout, measure=True, pillow_share=0.25, memory_cap=200 * 2**20)
    start = time.perf_counter()
    generating = 0.0
    for i in range(args.runs):
        t0 = time.perf_counter()
        data = structured(rng, Limits())
        generating += time.perf_counter() - t0
        campaign.run(data)
        if (i + 1) % 5000 == 0:
            print(json.dumps({"done": i + 1, **campaign.report(i + 1, time.perf_counter() - start)}), flush=True)
    result = campaign.report(args.runs, time.perf_counter() - start)
    result.update({"generating_s": round(generating, 1), "limits": {"MAX_MEMORY_mb": args.limit_memory_mb,
                   "MAX_MACS": args.limit_macs}, "seed": args.seed,
                   "machine": "2-core AMD EPYC, shared with other jobs; one thread (the NumPy decoder's pool "
                              "too); decoder: NumPy, a quarter of the inputs through Pillow's Image.open(...).load(); "
                              "time caps on CPU time, 1 s; memory cap on the traced peak, 200 MB",
                   "mode": "structured: valid headers and descriptors with extreme fields, words made valid"})
    print(json.dumps(result, indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
