"""Classifier benchmark: scoring throughput against sentence-transformers, substitution search against brute force.

1. Scoring: our batched path (review.classifier.model.score_pairs: tokenizer + frozen encoder + mean
   pooling + head) against the peer the weights' package documents, SentenceTransformer.encode on
   the same folder, followed by the same head. Same texts, same threads, scores checked to agree.
2. Substitutions for one token: ours (first-order estimate (e_v − e_t)·∇ over the whole vocabulary,
   the best 40 re-scored exactly) against exhaustive exact re-scoring of every candidate word: the
   time of each, and where our best replacement ranks among all of them.

Run: .venv/bin/python benchmarks/classifier.py [--texts 2000] [--threads 0]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from review.classifier import model

PROMPT = "Continue the story:"
INJURIOUS = [
    "He fell off the ladder and broke his arm.",
    "The knife slipped and cut deep into her hand, blood everywhere.",
    "She was hit by a car and badly injured.",
    "The explosion burned his face and hands.",
    "He twisted his ankle and screamed in pain.",
    "The dog bit the boy's leg, tearing the skin.",
    "She crashed her bike and fractured her skull.",
    "The hammer smashed his thumb, breaking the bone.",
]
SAFE = [
    "They had a lovely picnic by the lake.",
    "She read a book under the tree all afternoon.",
    "The children built a sandcastle on the beach.",
    "He baked bread and shared it with neighbours.",
    "They watched the sunset and talked quietly.",
    "The cat slept on the warm windowsill.",
    "She painted the fence a bright blue.",
    "He planted tomatoes in the garden.",
]
SUBJECTS = ["The old man", "A young girl", "The farmer", "My neighbour", "The soldier", "Her brother", "The teacher"]
EVENTS = [
    "slipped on the wet stairs and hit his head",
    "walked slowly to the market to buy apples",
    "cut her finger badly while chopping onions",
    "sang an old song by the fire",
    "was thrown from the horse and broke a rib",
    "wrote a long letter to an old friend",
    "burned his hand on the stove",
    "fed the ducks at the pond",
]
ENDINGS = ["before dawn.", "that afternoon.", "and nobody noticed.", "while the rain fell.", "as the bells rang."]


def synthetic_texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(EVENTS)} {rng.choice(ENDINGS)}" for _ in range(n)]


def timed(fn, repeat: int = 3):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved timing runs of each side")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    encoder = model.load_encoder()
    pairs = [(PROMPT, t) for t in INJURIOUS + SAFE]
    head = model.train_head(model.embed(encoder, pairs), torch.tensor([1] * len(INJURIOUS) + [0] * len(SAFE))).head

    # --- 1. scoring throughput -------------------------------------------------------------
    from sentence_transformers import SentenceTransformer

    packaged = SentenceTransformer(encoder.path, device="cpu")
    # Transformer + mean pooling, without the package's Normalize module: the head reads unnormalised
    # pooled embeddings, as ours computes them.
    peer = SentenceTransformer(modules=[packaged[0], packaged[1]], device="cpu")
    peer.max_seq_length = encoder.max_length
    texts = synthetic_texts(args.texts)

    def our_scores() -> list[float]:
        return model.score_pairs(encoder, head, [(PROMPT, t) for t in texts], batch_size=32)

    def peer_scores() -> list[float]:
        # The peer encodes the same pair as one "prompt [SEP] completion" string, since encode takes single texts.
        sep = encoder.tokenizer.sep_token
        emb = peer.encode([f"{PROMPT} {sep} {t}" for t in texts], batch_size=32, convert_to_tensor=True)
        with torch.no_grad():
            return torch.sigmoid(head(emb)).tolist()

    # Interleaved, so that load from elsewhere on the machine falls on both sides alike.
    ours_times, peer_times = [], []
    for n in range(args.repeat):
        # Each side goes first every other time: the one that runs second gets warmer caches.
        for side in ("ours", "peer") if n % 2 == 0 else ("peer", "ours"):
            if side == "ours":
                seconds, ours = timed(our_scores, repeat=1)
                ours_times.append(seconds)
            else:
                seconds, theirs = timed(peer_scores, repeat=1)
                peer_times.append(seconds)
    ours_s, peer_s = statistics.median(ours_times), statistics.median(peer_times)
    agree = sum((a >= 0.5) == (b >= 0.5) for a, b in zip(ours, theirs, strict=True)) / len(texts)
    gap = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
    print(f"\nscoring {len(texts)} completions (median of {args.repeat} interleaved runs)")
    print(f"  ours (score_pairs)               {ours_s:8.3f} s  {len(texts) / ours_s:8.1f} completions/s")
    print(f"  peer (SentenceTransformer.encode){peer_s:8.3f} s  {len(texts) / peer_s:8.1f} completions/s")
    print(f"  ratio peer/ours time              {peer_s / ours_s:8.2f}x")
    print(f"  same verdict at 0.5 on {agree:.1%} of completions, max |Δscore| {gap:.3f}")
    print("  (the peer takes one string, so the pair is 'prompt [SEP] completion' without segment ids)")

    # --- 2. substitution search ------------------------------------------------------------
    text = "The man slipped on the ice and broke his hip."
    explanation = model.explain(encoder, head, PROMPT, text)
    index = [t.token for t in explanation.tokens].index("broke")
    start = time.perf_counter()
    subs = model.substitutions(encoder, head, PROMPT, text, index, limit=10, shortlist=40)
    ours_sub_s = time.perf_counter() - start
    start = time.perf_counter()
    wide = model.substitutions(encoder, head, PROMPT, text, index, limit=10, shortlist=400)
    wide_s = time.perf_counter() - start

    words, _pieces = model._candidate_ids(encoder)  # the same candidate set ours searches
    token = explanation.tokens[index]
    candidates = [encoder.tokenizer.convert_ids_to_tokens(i) for i in words.tolist()]
    candidates = [c for c in candidates if c != "broke"]
    start = time.perf_counter()
    exact = model.score_pairs(
        encoder, head, [(PROMPT, text[: token.start] + c + text[token.end :]) for c in candidates], batch_size=256
    )
    brute_s = time.perf_counter() - start
    ranking = sorted(exact)
    best_ours = subs[0].score
    rank = sum(s < best_ours - 1e-9 for s in ranking) + 1
    print(f"\nsubstitutions for 'broke' in {text!r} (score {explanation.score:.4f})")
    print(f"  ours (first-order over {len(words)} words, 40 re-scored)  {ours_sub_s:8.3f} s  best {best_ours:.4f}")
    print(f"  brute force (all {len(candidates)} words re-scored)      {brute_s:8.3f} s  best {ranking[0]:.4f}")
    print(f"  ratio brute/ours time                                   {brute_s / ours_sub_s:8.1f}x")
    print(f"  our best is number {rank} of {len(candidates)} (top {100 * rank / len(candidates):.2f} %)")
    print(f"  our 10 suggestions are all in the exhaustive top {max_rank(subs, ranking)}")
    wide_rank = sum(s < wide[0].score - 1e-9 for s in ranking) + 1
    print(
        f"  with 400 re-scored: {wide_s:.3f} s, best {wide[0].score:.4f}, number {wide_rank} "
        f"(top {100 * wide_rank / len(candidates):.2f} %)"
    )


def max_rank(subs: list[model.Substitution], ranking: list[float]) -> int:
    return max(sum(s < sub.score - 1e-9 for s in ranking) + 1 for sub in subs)


if __name__ == "__main__":
    main()
