"""The encoder's defaults and the coder names, in a module with no heavy imports: the command line builds its help
from them without loading NumPy or torch."""

DEFAULT_ITERS = 2000
DEMO_ITERS = 1000  # `ddcodec demo`: half the default, about 30 s for its 256x256 photo on one core, ~0.3 dB lower
DEFAULT_LR = 0.02
DEFAULT_TRIES = 8  # seeds tried in the warm-up; the best one's network is fitted on
INPUTS = ("coded", "seed")  # profiles: latent grids coded in the file too, or the paper's seeded input alone
DEFAULT_INPUT = "coded"  # measured better at every rate of the cpu preset (benchmarks/results/history/cpu-v0.6)
CODERS = {"range": 0, "zstd": 1}  # coder name -> the id written in the header
