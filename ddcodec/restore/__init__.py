"""Restoration with an untrained network as the prior (Deep Image Prior, Deep Decoder): denoising, inpainting and
super-resolution, on the same torch components and Adam as the encoder's fit. The tasks are in tasks.py, the priors
in priors.py and dip.py."""

from ddcodec.restore.tasks import DEFAULT_PRIOR, SETTINGS, denoise, downsample, estimate_sigma, inpaint, superres

__all__ = ["DEFAULT_PRIOR", "SETTINGS", "denoise", "downsample", "estimate_sigma", "inpaint", "superres"]
