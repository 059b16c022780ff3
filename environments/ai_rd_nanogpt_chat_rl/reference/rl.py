"""Reference solution: policy-gradient RL (REINFORCE with a per-question group baseline) on the model's own samples.

No chat data and no supervised targets: the model samples several answers to each training
question, a reward scores them (on topic: the question's words; complete: a finished sentence;
a sentence, not a fragment or a wall), and the log-probability of each sample is pushed up or down
by how much better it did than the other samples for the same question. Writes `model.pth`.

Usage: python rl.py [--steps 40] [--lr 2e-3]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import chat
import model as nanogpt
import torch

HERE = Path(__file__).resolve().parent
STOP = {"what", "does", "which", "when", "where", "with", "that", "this", "from", "have", "about", "should", "there"}


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]{4,}", text.lower())) - STOP


def reward(question: str, answer: str) -> float:
    if not answer:
        return -5.0
    value = 2.0 * len(words(question) & words(answer))
    value += 1.0 if answer.endswith((".", "!", "?")) else 0.0
    value += 1.0 if 10 <= len(answer) <= 120 else 0.0
    # Shaping: a little for length up to a sentence's worth, so short fragments aren't a resting place.
    return value + 0.5 * min(len(answer), 24) / 24


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--questions", type=int, default=8, help="training questions per step")
    parser.add_argument("--samples", type=int, default=8, help="answers sampled per question")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    questions = [json.loads(line)["question"] for line in (HERE / "prompts_train.jsonl").read_text().splitlines()]
    policy = nanogpt.load_checkpoint(HERE / "model.pth")
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    for step in range(args.steps):
        picked = [questions[i] for i in torch.randint(len(questions), (args.questions,), generator=generator).tolist()]
        group = [q for q in picked for _ in range(args.samples)]
        policy.eval()
        prompts, generated = chat.sample(policy, group, temperature=1.0, generator=generator, max_new_tokens=32)
        rewards = torch.tensor([reward(q, chat.text(g)) for q, g in zip(group, generated, strict=True)])
        grouped = rewards.view(args.questions, args.samples)
        advantage = ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-6)).flatten()
        policy.train()
        # Only the tokens that made the answer get the credit or the blame for it.
        loss = -(advantage * chat.log_probs(policy, prompts, generated, chat.answer_mask(generated))).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 10 == 0 or step == args.steps - 1:
            print(f"step {step}: mean reward {rewards.mean():.2f}", flush=True)
    policy.eval()
    nanogpt.save_checkpoint(HERE / "model.pth", policy)


if __name__ == "__main__":
    main()
