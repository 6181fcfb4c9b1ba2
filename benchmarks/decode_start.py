"""Decode start-up: cold (a fresh process each time) and warm decode time and peak memory of a 768x512 default file.

`python -m benchmarks.decode_start [--file F.ddc | --image kodim23.png | --planned] [--repeats N] [--root DIR]
[--label L] [--out results.json]` times, each in a fresh interpreter (`--repeats` times, alternating so that they see the same
load):
- `python` alone and `import ddcodec, PIL.Image` (the baselines);
- `ddcodec decode F.ddc out.png` (the command line's `main`, as its console script runs it);
- `import ddcodec; ddcodec.decode(F.ddc)` (the library);
- `import ddcodec; Image.open(F.ddc).load()` (the Pillow plugin);
and, in one more fresh interpreter, the warm library decode (the first decode, then `--repeats` more, timed one by
one). Each row keeps the wall times, the CPU times (user + system, every thread: what a loaded machine inflates
less) and the peak resident memory (the child's max RSS), the best and the median. The file is the committed
`benchmarks/data/kodim23_768x512_0.3bpp.ddc` (kodim23 encoded at 0.3 bpp with 60 iterations: v0.11's default
profile, with the ARM), or with `--image` an image encoded the same way first, or with `--planned` a file of the
current default plan's architecture built without a fit (`planned`: its decode costs what a fitted file's does, the
ARM's part with fitted-like sparsity). `--root` benchmarks another checkout (its
ddcodec first on the path; e.g. a `git worktree` of an older commit) with this interpreter. The JSON records the
machine, its load (`uptime`) before and after, and the commit of the code measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FILE = HERE / "data" / "kodim23_768x512_0.3bpp.ddc"
OUT = HERE / "results" / "decode-start.json"

CASES = {  # name: the code a fresh interpreter runs (FILE and DST are filled in)
    "python": "pass",
    "import": "import ddcodec\nfrom PIL import Image",
    "cli decode": "import sys\nsys.argv = ['ddcodec', 'decode', FILE, DST, '--overwrite']\n"
                  "from ddcodec.cli import main\nmain()",
    "library decode": "import ddcodec\nddcodec.decode(FILE)",
    "pillow load": "import ddcodec\nfrom PIL import Image\nImage.open(FILE).load()",
}
WARM = """
import json, resource, sys, time
import ddcodec
data = open(FILE, 'rb').read()
times = []
for _ in range(REPEATS + 1):
    w, c = time.perf_counter(), time.process_time()
    ddcodec.decode(data, output='numpy')
    times.append((time.perf_counter() - w, time.process_time() - c))
print(json.dumps({'first': times[0], 'warm': times[1:], 'max_rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def run(code: str, root: Path) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, max RSS in bytes, stdout) of a fresh interpreter running `code` in `root`, with
    `root` first on its path (`-c` puts the working directory first). Raises RuntimeError if it fails."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{code!r} failed ({proc.returncode}): {err.strip()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out


def summary(values: list[float]) -> dict:
    return {"all": [round(v, 4) for v in values], "best": round(min(values), 4),
            "median": round(statistics.median(values), 4)}


def encoded(image: Path, dst: Path) -> Path:
    """The image encoded as the committed file was (0.3 bpp, 60 iterations, one try)."""
    import numpy as np
    from PIL import Image

    import ddcodec

    dst.write_bytes(ddcodec.encode(np.asarray(Image.open(image).convert("RGB")), bpp=0.3, iters=60, tries=1).data)
    return dst


def planned(dst: Path, spread: float = 0.15, seed: int = 0) -> Path:
    """A file of the default plan's architecture for a 768x512 image at 0.3 bpp (ratecontrol.plan: what an encode
    fits, hence its decode's cost, without the fit): weights random integers within +-8, ARM weights within +-1/2 at
    step 2^-8, latents rounded Laplace values of this spread (0.15: 4 % non-zero, about a fitted 0.3 bpp file's
    sparsity, which sets the ARM's speed: an all-zero context skips its MLP)."""
    import numpy as np

    from ddcodec.encoder.ratecontrol import plan
    from ddcodec.format.container import Header, pack
    from ddcodec.format.payload import encode_payload

    arch = plan(512, 768, 3, bpp=0.3, coded_input=True).arch
    rng = np.random.default_rng(seed)
    ints = []
    for t, shape in enumerate(arch.tensor_shapes()):
        if t in arch.grid_indices:
            ints.append(np.round(rng.laplace(0, spread, shape)).astype(np.int64))
        elif t in arch.arm_indices:
            ints.append(np.round(rng.uniform(-0.5, 0.5, shape) * 256).astype(np.int64))
        else:
            ints.append(rng.integers(-8, 9, shape))
    header = Header(arch, 0, 0, tuple(-32 if t in arch.arm_indices else -24 for t in range(len(ints))))
    dst.write_bytes(pack(header, encode_payload(header, ints)))
    return dst


def cpu_name() -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=FILE)
    parser.add_argument("--image", type=Path, help="encode this image first (0.3 bpp, 60 iterations) and decode it")
    parser.add_argument("--planned", action="store_true",
                        help="decode a file of the default plan's architecture, built without a fit (planned)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose ddcodec is measured")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    root = args.root.resolve()
    load_before = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        path = (encoded(args.image, Path(tmp) / "image.ddc") if args.image
                else planned(Path(tmp) / "planned.ddc") if args.planned else args.file.resolve())
        fill = {"FILE": repr(str(path)), "DST": repr(str(Path(tmp) / "out.png")), "REPEATS": str(args.repeats)}

        def code(template: str) -> str:
            for key, value in fill.items():
                template = template.replace(key, value)
            return template

        samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in CASES}
        for _ in range(args.repeats):
            for name, template in CASES.items():
                samples[name].append(run(code(template), root)[:3])
        wall, cpu, rss, out = run(code(WARM), root)
    warm = json.loads(out)
    rows = {name: {"wall_s": summary([s[0] for s in runs]), "cpu_s": summary([s[1] for s in runs]),
                   "max_rss_mb": summary([s[2] / 2**20 for s in runs])} for name, runs in samples.items()}
    rows["warm library decode"] = {"wall_s": summary([t[0] for t in warm["warm"]]),
                                   "cpu_s": summary([t[1] for t in warm["warm"]]),
                                   "first_in_process": {"wall_s": round(warm["first"][0], 4),
                                                        "cpu_s": round(warm["first"][1], 4)},
                                   "max_rss_mb": round(warm["max_rss"] / 1024, 1)}
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    result = {"label": args.label, "commit": commit + ("+changes" if dirty else ""), "file": str(path.name),
              "file_bytes": path.stat().st_size, "repeats": args.repeats,
              "machine": f"{cpu_name()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}", "load_before": load_before, "load_after": uptime(),
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{args.label or root} ({result['commit']}), {path.name}; {load_before}")
    print(f"{'':22} {'wall best':>9} {'median':>7} {'CPU best':>9} {'median':>7} {'max RSS MB':>10}")
    for name, row in rows.items():
        rss_mb = row["max_rss_mb"]["median"] if isinstance(row["max_rss_mb"], dict) else row["max_rss_mb"]
        print(f"{name:22} {row['wall_s']['best']:9.3f} {row['wall_s']['median']:7.3f} {row['cpu_s']['best']:9.3f} "
              f"{row['cpu_s']['median']:7.3f} {rss_mb:10.1f}")


if __name__ == "__main__":
    main()
