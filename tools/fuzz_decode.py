"""Fuzz the decoder with mutated .ddc streams whose CRC is recomputed, so that the parser, the entropy decoders and
the forward pass behind the CRC are exercised; anything but ddcodec's own errors, a decode over the time cap or
memory above the cap is a finding.

    python tools/fuzz_decode.py --runs 100000 --out benchmarks/results/fuzz.json     # atheris, coverage-guided
    python tools/fuzz_decode.py --runs 100000 --plain ...                            # random mutations only

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
import zlib
from collections import Counter
from pathlib import Path

import numpy as np


def seeds() -> list[bytes]:
    """Small valid streams: seed and coded input, range and zstd coders, and a coded stream whose latent grids
    (replaced by correlated integers) use the context model, then the ARM (random weights at step 2^-8)."""
    from dataclasses import replace

    import ddcodec
    from ddcodec.architecture import ArmShape
    from ddcodec.bitstream import Header, pack
    from ddcodec.payload import encode_payload
    from ddcodec.reader import read_ints

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


class Campaign:
    """Decodes inputs and tallies what happened: outcomes by type, the slowest input, peak memory growth."""

    def __init__(self, timeout: float):
        from ddcodec.decoder import decode_array

        self.decode, self.timeout = decode_array, timeout
        self.outcomes: Counter[str] = Counter()
        self.slowest = 0.0
        self.baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def run(self, data: bytes) -> None:
        from ddcodec import DdcodecError

        start = time.perf_counter()
        try:
            self.decode(data)
            self.outcomes["decoded"] += 1
        except DdcodecError as exc:
            self.outcomes[type(exc).__name__] += 1
        except Exception as exc:  # a finding: kept and reported
            self.outcomes[f"FINDING {type(exc).__name__}: {str(exc)[:80]}"] += 1
        elapsed = time.perf_counter() - start
        self.slowest = max(self.slowest, elapsed)
        if elapsed > self.timeout:
            self.outcomes["FINDING over the time cap"] += 1

    def report(self, runs: int, seconds: float) -> dict:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.baseline) / 1024
        findings = sum(n for k, n in self.outcomes.items() if k.startswith("FINDING"))
        return {"inputs": runs, "seconds": round(seconds, 1), "outcomes": dict(self.outcomes), "findings": findings,
                "slowest_decode_s": round(self.slowest, 4), "peak_memory_above_baseline_mb": round(peak, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=10000)
    p.add_argument("--timeout", type=float, default=1.0, help="seconds one decode may take")
    p.add_argument("--memory-mb", type=int, default=2048, help="address-space cap above the baseline")
    p.add_argument("--plain", action="store_true", help="random mutations instead of atheris")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    corpus = seeds()
    campaign = Campaign(args.timeout)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    usage = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (usage + args.memory_mb * 2**20, hard))
    start, rng = time.perf_counter(), random.Random(0)

    def finish() -> None:
        result = campaign.report(sum(campaign.outcomes.values()) - campaign.outcomes["FINDING over the time cap"],
                                 time.perf_counter() - start)
        result["machine"] = "2-core AMD EPYC, shared with other jobs; one torch thread; decoder: torch"
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


if __name__ == "__main__":
    raise SystemExit(main())
