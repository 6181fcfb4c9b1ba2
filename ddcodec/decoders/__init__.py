"""The decoders on the format: NumPy (npdecode.py, npsynthesis.py; no torch) and torch (torchdecode.py), and the
front that picks one (decode.py). They never import the encoder or the training code."""
