"""ddcodec.training.adam: the same updates as torch.optim.Adam (whose first use imports torch._dynamo, seconds per process)."""

import torch

from ddcodec.training.adam import Adam


def test_adam_matches_torch_optim_step_for_step():
    torch.manual_seed(0)
    ours = [torch.randn(5, 3, requires_grad=True), torch.randn(4, requires_grad=True)]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    optimizers = ((ours, Adam(ours, 0.01)), (theirs, torch.optim.Adam(theirs, lr=0.01)))
    for _ in range(30):
        for params, opt in optimizers:
            opt.zero_grad()
            sum((p**3 - p).sum() for p in params).backward()
            opt.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
