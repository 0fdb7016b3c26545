"""Modules that `harness verify` copies into a run's work dir, where the submission's script imports
them in place of packages the machine lacks (flash_attn_interface.py: FlashAttention 3 on PyTorch SDPA).

The harness itself never imports them: each is standalone (torch and the standard library only) and is
handled as a file.
"""
