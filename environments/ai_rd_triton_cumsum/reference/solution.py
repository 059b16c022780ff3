"""Reference solution: a three-phase Triton scan (block summaries, a scan over blocks, block scans)."""

import torch
import triton
import triton.language as tl

BLOCK = 4096


@triton.jit
def _block_summaries(x_ptr, count_ptr, sum_even_ptr, sum_odd_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask, other=0)
    positive = (x > 0).to(tl.int32)
    before = tl.cumsum(positive, axis=0) - positive
    odd = (before & 1) == 1
    # The block's contribution if an even (odd) number of positives came before it.
    tl.store(count_ptr + pid, tl.sum(positive, axis=0))
    tl.store(sum_even_ptr + pid, tl.sum(tl.where(odd, x, 0), axis=0))
    tl.store(sum_odd_ptr + pid, tl.sum(tl.where(odd, 0, x), axis=0))


@triton.jit
def _block_scan(x_ptr, out_ptr, parity_ptr, carry_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask, other=0)
    positive = (x > 0).to(tl.int32)
    before = tl.cumsum(positive, axis=0) - positive + tl.load(parity_ptr + pid)
    kept = tl.where((before & 1) == 1, x, 0)
    tl.store(out_ptr + offsets, tl.cumsum(kept, axis=0) + tl.load(carry_ptr + pid), mask=mask)


def prefix_sum(x: torch.Tensor) -> torch.Tensor:
    n = x.numel()
    out = torch.empty_like(x)
    if n == 0:
        return out
    blocks = triton.cdiv(n, BLOCK)
    counts = torch.empty(blocks, dtype=torch.int32, device=x.device)
    sum_even = torch.empty(blocks, dtype=torch.int32, device=x.device)
    sum_odd = torch.empty(blocks, dtype=torch.int32, device=x.device)
    _block_summaries[(blocks,)](x, counts, sum_even, sum_odd, n, BLOCK=BLOCK)
    # A scan over a few thousand block summaries: small, so torch does it.
    parity = ((torch.cumsum(counts, 0, dtype=torch.int32) - counts) & 1).to(torch.int32)
    contribution = torch.where(parity == 1, sum_odd, sum_even)
    carry = (torch.cumsum(contribution, 0, dtype=torch.int64) - contribution).to(torch.int32)
    _block_scan[(blocks,)](x, out, parity, carry, n, BLOCK=BLOCK)
    return out
