"""The masked language model: its forward pass may use only allowed torch operations (see instructions.md).

`Model()` must build with no arguments; `forward(tokens)` takes a LongTensor (batch, length) of
byte ids where MASK_ID marks the hidden positions, and returns logits (batch, length, VOCAB_SIZE).
The starting model: embeddings, a fixed five-token window summed with learned weights, a ReLU MLP.
"""

import json
from pathlib import Path

import torch
from torch import nn

# Sizes of this configuration's data (start writes them): bytes + mask (small), GPT-2 tokens + mask (full).
META = json.loads((Path(__file__).resolve().parent / "data" / "meta.json").read_text())
VOCAB_SIZE = META["vocab_size"]
MASK_ID = META["mask_id"]
BLOCK_SIZE = META["block_size"]
WIDTH = 64
WINDOW = (-2, -1, 1, 2)


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, WIDTH)
        self.position = nn.Embedding(BLOCK_SIZE, WIDTH)
        self.mix = nn.Parameter(torch.full((len(WINDOW), WIDTH), 0.5))
        self.hidden = nn.Linear(WIDTH, 4 * WIDTH)
        self.out = nn.Linear(4 * WIDTH, VOCAB_SIZE)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.position(torch.arange(tokens.shape[1], device=tokens.device))
        context = x
        for weight, shift in zip(self.mix, WINDOW, strict=True):
            context = context + weight * torch.roll(x, shifts=-shift, dims=1)
        return self.out(torch.relu(self.hidden(context)))
