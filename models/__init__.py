"""Torch/transformers model code (CTR ranker, base LM, Direct generator). No servers, no I/O."""
