"""Adam (Kingma & Ba) over a list of tensors, in foreach kernels: the same update as torch.optim.Adam without weight
decay, without its first use's import of torch._dynamo, which costs 2-4 s per process on this CPU (a fifth of a
256x256 encode's target time)."""

from __future__ import annotations

import math
from typing import Sequence

import torch


class Adam:
    """p -= lr · s_p · m̂ / (sqrt(v̂) + eps), m̂ and v̂ the bias-corrected moving averages of the gradient and its
    square, s_p a per-parameter scale of the learning rate (`lr_scales`, default 1)."""

    def __init__(self, params: Sequence[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, lr_scales: Sequence[float] | None = None):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.lr_scales = [1.0] * len(self.params) if lr_scales is None else list(lr_scales)
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update from the parameters' gradients (a parameter without one counts as a zero gradient)."""
        b1, b2 = self.betas
        self.steps += 1
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in self.params]
        torch._foreach_lerp_(self.m, grads, 1 - b1)
        torch._foreach_mul_(self.v, b2)
        torch._foreach_addcmul_(self.v, grads, grads, 1 - b2)
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_div_(denom, math.sqrt(1 - b2**self.steps))
        torch._foreach_add_(denom, self.eps)
        rate = -self.lr / (1 - b1**self.steps)
        torch._foreach_addcdiv_(self.params, self.m, denom, [rate * s for s in self.lr_scales])
