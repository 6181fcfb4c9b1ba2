"""The fitting engine shared by the encoder and restoration: the fit of one phase (fit.py), its schedule as data
(presets.py), the warm-up, the optimizers, the latents' quantization proxies and progress reports."""
