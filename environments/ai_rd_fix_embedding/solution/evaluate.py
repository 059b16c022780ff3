"""Print the loss of fixed_model.pth on data/val.bin, your validation split (the score: the same on held-out text)."""

import sys

import model as nanogpt
import torch

torch.set_num_threads(1)
path = sys.argv[1] if len(sys.argv) > 1 else "fixed_model.pth"
gpt = nanogpt.load_checkpoint(path)
tokens = nanogpt.load_tokens_any("data/val.bin")
print(f"{path}: validation loss {nanogpt.evaluate(gpt, tokens):.4f}")
