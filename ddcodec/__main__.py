"""`python -m ddcodec`: the same command line as the `ddcodec` script (ddcodec.cli)."""

from ddcodec.cli import main

main(prog_name="ddcodec")
