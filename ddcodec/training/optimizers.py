"""The fit's optimizer: Adam on every tensor, or SOAP on the weight matrices with Adam on the rest (Cool-chic 5).

SOAP (Vyas et al., 2024: Adam in the eigenbasis of Shampoo's preconditioner) comes from the kept library
pytorch-optimizer, imported only when asked for (an `encode` extra's dependency). Its preconditioner works on a
tensor's every dimension, so it is used only for one network at a time (B = 1): on a batch it would mix the
networks. The latent grids always train with Adam, at `latent_gain` times the learning rate.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ddcodec.training.adam import Adam

OPTIMIZERS = ("adam", "soap")
SOAP_BETAS = (0.95, 0.95)  # Cool-chic 5's
SOAP_PRECONDITION_EVERY = 10


class FitOptimizer:
    """Steps the parameters of one fit; `lr` is set before each step (the schedule's value)."""

    def __init__(self, kind: str, params: Sequence[torch.Tensor], latent: Sequence[bool], lr: float,
                 latent_gain: float = 1.0):
        if kind not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {kind!r} (choose from {', '.join(OPTIMIZERS)})")
        matrices = [p for p, g in zip(params, latent) if kind == "soap" and not g and p.dim() == 3 and p.shape[0] == 1]
        rest = [(p, g) for p, g in zip(params, latent) if not any(p is m for m in matrices)]
        self.adam = Adam([p for p, _ in rest], lr=lr, lr_scales=[latent_gain if g else 1.0 for _, g in rest])
        self.soap = None
        if matrices:
            from pytorch_optimizer import SOAP

            self.soap = SOAP(matrices, lr=lr, betas=SOAP_BETAS, weight_decay=0.0,
                             precondition_frequency=SOAP_PRECONDITION_EVERY)

    def set_lr(self, lr: float) -> None:
        self.adam.lr = lr
        for group in self.soap.param_groups if self.soap else ():
            group["lr"] = lr

    def zero_grad(self) -> None:
        self.adam.zero_grad()
        if self.soap:
            self.soap.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.adam.step()
        if self.soap:
            self.soap.step()
