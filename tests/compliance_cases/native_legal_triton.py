# A Triton kernel is Python the scanner reads; importing a third-party package is free (README FAQ).
# expect-verdict: clean
import torch
import triton
import triton.language as tl


@triton.jit
def relu_square_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.maximum(x, 0.0)
    tl.store(out_ptr + offsets, y * y, mask=mask)


def relu_square(x):
    out = torch.empty_like(x)
    relu_square_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
    return out
