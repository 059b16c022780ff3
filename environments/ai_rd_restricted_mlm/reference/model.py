"""Reference masked LM with allowed operations only: a five-position window for local context (a
convolution built from padding, strided windows and a matrix product: nn.Conv1d itself is a built-in
module the rules don't allow), ReLU-kernel attention for long range (unnormalised: no softmax, no
division), residual ReLU MLPs; scaling by constants."""

import json
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

META = json.loads((Path(__file__).resolve().parent / "data" / "meta.json").read_text())
VOCAB_SIZE = META["vocab_size"]
MASK_ID = META["mask_id"]
BLOCK_SIZE = META["block_size"]
WIDTH = 64
LAYERS = 2
KERNEL = 5


class Window(nn.Module):
    """What nn.Conv1d(WIDTH, WIDTH, KERNEL, padding=KERNEL // 2) computes, initialised as it is."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(WIDTH, WIDTH, KERNEL))
        self.bias = nn.Parameter(torch.empty(WIDTH))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(WIDTH * KERNEL)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (0, 0, KERNEL // 2, KERNEL // 2))  # zeros before and after, along the sequence
        windows = padded.unfold(1, KERNEL, 1)  # (batch, length, width, kernel)
        return torch.einsum("blik,oik->blo", windows, self.weight) + self.bias


class Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.window = Window()
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.up = nn.Linear(WIDTH, 2 * WIDTH)
        self.down = nn.Linear(2 * WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + torch.relu(self.window(x))
        q, k, v = self.qkv(x).split(WIDTH, dim=2)
        weights = torch.relu(q) @ torch.relu(k).transpose(1, 2) * (1.0 / (WIDTH * BLOCK_SIZE))
        x = x + weights @ v
        return x + self.down(torch.relu(self.up(x)))


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, WIDTH)
        self.position = nn.Embedding(BLOCK_SIZE, WIDTH)
        self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
        self.out = nn.Linear(WIDTH, VOCAB_SIZE)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.position(torch.arange(tokens.shape[1], device=tokens.device))
        for layer in self.layers:
            x = layer(x)
        return self.out(F.relu(x))
