"""Reference fix: throw the corrupted embedding away and retrain only it, the rest of the model frozen."""

import model as nanogpt
import torch

torch.set_num_threads(1)
gpt = nanogpt.load_checkpoint("large_model.pth")
for parameter in gpt.parameters():
    parameter.requires_grad_(False)
torch.manual_seed(5)
torch.nn.init.normal_(gpt.wte.weight, std=0.02)
gpt.wte.weight.requires_grad_(True)
tokens = nanogpt.load_tokens_any("data/train.bin")
nanogpt.train(gpt, tokens, steps=300, batch_size=16, lr=2e-2, parameters=[gpt.wte.weight], seed=5)
nanogpt.save_checkpoint("fixed_model.pth", gpt)
print("wrote fixed_model.pth")
