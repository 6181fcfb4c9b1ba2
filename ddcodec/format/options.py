"""The encoder's defaults and the coder names, in a module with no heavy imports: the command line builds its help
from them without loading NumPy or torch."""

DEFAULT_LR = 0.02
INPUTS = ("coded", "seed")  # profiles: latent grids coded in the file too, or the paper's seeded input alone
DEFAULT_INPUT = "coded"  # measured better at every rate of the cpu preset (benchmarks/results/history/cpu-v0.6)
CODERS = {"range": 0, "zstd": 1}  # coder name -> the id written in the header
