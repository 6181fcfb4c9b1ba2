"""The package's exception types: every failure a user can cause is one of these."""


class DdcodecError(Exception):
    """Base class of ddcodec's own errors; the CLI turns these into a one-line message and exit code 2."""


class BitstreamError(DdcodecError):
    """A .ddc stream is damaged, truncated, or not a ddcodec file."""


class InputError(DdcodecError):
    """An image or an option given to the encoder cannot be used."""


class OutputExistsError(InputError):
    """An output file appeared while the command ran (another program wrote it), and is not replaced."""


def naming(name: str, exc: BaseException) -> str:
    """The error's message, prefixed with `name` (the file it is about) unless it names it already."""
    return str(exc) if name in str(exc) else f"{name}: {exc}"


class DecodeBudgetError(BitstreamError):
    """A .ddc stream is well formed but would cost more to decode than the limits allow (a decompression bomb, or a
    trusted large file: raise ddcodec.format.limits' settings, pass larger limits to decode, or give `ddcodec
    decode` --max-memory, --max-pixels or --max-macs)."""
