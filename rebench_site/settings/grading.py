"""Scoring, environment configurations, the LLM endpoints some environments score with, and leaderboards."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from rebench_site.settings.core import DATA_DIR, DEBUG
from rebench_site.settings.env import env_bool, env_float, env_int, env_json_object, env_list, env_str
from rebench_site.settings.infrastructure import CELERY_BEAT_SCHEDULE

# --- Grading ---
# Scorers run on the workstation's worker; the broker's visibility timeout (infrastructure.py) must exceed the longest.
GRADING_SCORE_TIMEOUT_SECONDS = env_int("GRADING_SCORE_TIMEOUT_SECONDS", 600)
GRADING_MEMORY_LIMIT_GB = env_int("GRADING_MEMORY_LIMIT_GB", 16)
# Extra folders holding environment packages (one sub-folder per environment slug).
GRADING_PACKAGE_DIRS = env_list("GRADING_PACKAGE_DIRS", [])
# Protected copies of scorers and the CSV score logs (workspaces are TERMINAL_WORKSPACE_ROOT/attempt-<id>).
PROTECTED_DIR = Path(env_str("PROTECTED_DIR", str(DATA_DIR / "protected")))
# Make the end-of-attempt scoring run (off only for tests that end attempts without a worker).
GRADING_FINAL_SCORING = env_bool("GRADING_FINAL_SCORING", True)
# A running scoring job's worker says it is alive this often; one silent for LOST_AFTER is lost
# (a killed worker, a lost host) whatever the broker does with its message: it is run again until
# it has been picked up MAX_DELIVERIES times, then closed with an invalid entry marked lost and
# the attempt's clock restarted. Checked by the beat task below and whenever the expert asks to score.
SCORING_HEARTBEAT_SECONDS = env_int("SCORING_HEARTBEAT_SECONDS", 10)
SCORING_LOST_AFTER_SECONDS = env_int("SCORING_LOST_AFTER_SECONDS", 60)
SCORING_MAX_DELIVERIES = env_int("SCORING_MAX_DELIVERIES", 2)
# A job still waiting this long for a worker on a workstation that stopped answering is closed with an
# entry saying so (its workspace is on that host: no other worker could score it).
SCORING_QUEUED_ON_SILENT_HOST_MINUTES = env_int("SCORING_QUEUED_ON_SILENT_HOST_MINUTES", 30)
CELERY_BEAT_SCHEDULE["scoring-jobs-recover"] = {
    "task": "graders.tasks.scoring_jobs_recover",
    "schedule": timedelta(seconds=env_int("SCORING_RECOVER_SECONDS", 30)),
}

# --- Environment configurations ---
# Each environment package runs at `full` scale (RE-Bench's data, models and numbers) or `small`
# (an offline corpus and tiny models, for a CPU); production defaults to full, the embedded defaults to small.
ENVIRONMENT_CONFIGURATION = env_str("ENVIRONMENT_CONFIGURATION", "small" if DEBUG else "full")
# Per environment: ENVIRONMENT_CONFIGURATION_<SLUG>=small|full (e.g. ENVIRONMENT_CONFIGURATION_AI_RD_FIX_EMBEDDING).
ENVIRONMENT_CONFIGURATION_OVERRIDES = {
    name.removeprefix("ENVIRONMENT_CONFIGURATION_").lower(): value
    for name, value in os.environ.items()
    if name.startswith("ENVIRONMENT_CONFIGURATION_") and value
}
# What environments build at start (corpora, trained tiny models, reference weights), keyed by configuration.
ENVIRONMENT_CACHE_DIR = Path(env_str("ENVIRONMENT_CACHE_DIR", str(DATA_DIR / "environment-cache")))
# Full-scale data and weights on the workstations, checked at start (empty: not installed here).
# OpenWebText as nanoGPT prepares it: train.bin and val.bin of uint16 GPT-2 token ids.
ENVIRONMENT_OPENWEBTEXT_DIR = env_str("ENVIRONMENT_OPENWEBTEXT_DIR", "")
# The held-out split fix_embedding and restricted_mlm score on (test.bin, same tokens): never the expert's
# val.bin, and readable only by root and the `protected` group (the scorer), not by experts.
ENVIRONMENT_OPENWEBTEXT_HELDOUT_DIR = env_str("ENVIRONMENT_OPENWEBTEXT_HELDOUT_DIR", "")
# The trained GPT-2-small-sized checkpoint whose embeddings ai_rd_fix_embedding corrupts (a state_dict .pth).
ENVIRONMENT_FIX_EMBEDDING_MODEL = env_str("ENVIRONMENT_FIX_EMBEDDING_MODEL", "")
# Its shape ({"vocab_size": ..., "block_size": ..., "n_layer": ..., "n_head": ..., "n_embd": ...}); empty:
# GPT-2 small's, from the package. The start refuses a checkpoint of another shape.
ENVIRONMENT_FIX_EMBEDDING_MODEL_SHAPE = env_json_object("ENVIRONMENT_FIX_EMBEDDING_MODEL_SHAPE", {})
# RE-Bench's small_correct_model.pth: a much smaller model trained on the same data, its embeddings intact.
ENVIRONMENT_FIX_EMBEDDING_SMALL_MODEL = env_str("ENVIRONMENT_FIX_EMBEDDING_SMALL_MODEL", "")
# RE-Bench's llm-foundry task folder: finetune.sh, finetune.yaml, train_data.jsonl and base_model/ (the
# expert's, as they are), trained_model_reference/ (the scorer's).
ENVIRONMENT_LLM_FOUNDRY_DIR = env_str("ENVIRONMENT_LLM_FOUNDRY_DIR", "")

# --- LLM endpoints for ai_rd_rust_codecontests_inference and ai_rd_nanogpt_chat_rl ---
# OpenAI-compatible chat endpoints (base URLs ending in /v1). Their API keys are never settings:
# the worker's environment holds RUST_CODECONTESTS_API_KEY / CHAT_RL_JUDGE_API_KEY and hands them to
# the scorer only; an expert's module reaches the model through the scorer's budget proxy. The web
# server's environment holds both keys too: it forwards the shell's own calls (graders.services.
# model_calls: the Rust model, chat RL's judge), charged to the attempt's budget.


# Empty: scoring says plainly that an endpoint is needed (small: e.g. scripted_model/serve.py).
RUST_CODECONTESTS_MODEL_URL = env_str("RUST_CODECONTESTS_MODEL_URL", "")
RUST_CODECONTESTS_MODEL = env_str("RUST_CODECONTESTS_MODEL", "gpt-3.5-turbo-0125")
# What the attempt may spend, all the expert's scoring runs together (RE-Bench: $500 of credit for the
# task), each run's proxy given what the earlier ones left (0 = that kind is not limited).
RUST_CODECONTESTS_BUDGET_TOKENS = env_int("RUST_CODECONTESTS_BUDGET_TOKENS", 0)
RUST_CODECONTESTS_BUDGET_USD = env_float("RUST_CODECONTESTS_BUDGET_USD", 500.0)
# Prices per million tokens for the USD budget (defaults: gpt-3.5-turbo-0125's list prices).
RUST_CODECONTESTS_PRICE_INPUT_PER_MTOK = env_float("RUST_CODECONTESTS_PRICE_INPUT_PER_MTOK", 0.5)
RUST_CODECONTESTS_PRICE_OUTPUT_PER_MTOK = env_float("RUST_CODECONTESTS_PRICE_OUTPUT_PER_MTOK", 1.5)
# Full configuration: the held-out problems as CodeContests JSONL rows (checked at scoring).
RUST_CODECONTESTS_DATASET = env_str("RUST_CODECONTESTS_DATASET", "")
# Empty: the first rustc the scorer's user can run (PATH, /usr/bin, /usr/local/bin).
RUST_CODECONTESTS_RUSTC = env_str("RUST_CODECONTESTS_RUSTC", "")
# The judge of ai_rd_nanogpt_chat_rl; without a URL its scoring says a judge endpoint is required.
CHAT_RL_JUDGE_URL = env_str("CHAT_RL_JUDGE_URL", "")
CHAT_RL_JUDGE_MODEL = env_str("CHAT_RL_JUDGE_MODEL", "meta-llama/Meta-Llama-3-8B-Instruct")  # RE-Bench's judge
CHAT_RL_JUDGE_TIMEOUT_SECONDS = env_int("CHAT_RL_JUDGE_TIMEOUT_SECONDS", 60)
# What the expert's own judge calls (the shell's evaluation.py) may spend in one attempt; the scoring
# runs' judging is the site's and not counted. RE-Bench gave the agent the judge's token with no stated
# limit (its official solution makes about 14,000 calls, well under $1 at these prices): the cap is a
# stop for a runaway loop (0 = that kind is not limited).
CHAT_RL_JUDGE_BUDGET_TOKENS = env_int("CHAT_RL_JUDGE_BUDGET_TOKENS", 0)
CHAT_RL_JUDGE_BUDGET_USD = env_float("CHAT_RL_JUDGE_BUDGET_USD", 50.0)
# Per million tokens (defaults: Replicate's list prices for meta-llama-3-8b-instruct, RE-Bench's route).
CHAT_RL_JUDGE_PRICE_INPUT_PER_MTOK = env_float("CHAT_RL_JUDGE_PRICE_INPUT_PER_MTOK", 0.05)
CHAT_RL_JUDGE_PRICE_OUTPUT_PER_MTOK = env_float("CHAT_RL_JUDGE_PRICE_OUTPUT_PER_MTOK", 0.25)
# Full configuration: the base model (GPT-2) and RE-Bench's second baseline, the base model fine-tuned
# on Stanford Alpaca, both Hugging Face folders, and the held-out questions (JSONL).
CHAT_RL_BASE_MODEL = env_str("CHAT_RL_BASE_MODEL", "")
CHAT_RL_ALPACA_MODEL = env_str("CHAT_RL_ALPACA_MODEL", "")
CHAT_RL_PROMPTS = env_str("CHAT_RL_PROMPTS", "")

# --- Leaderboards ---
# Score changes mark the leaderboard dirty; the recompute waits this long after the last change
# (bursts coalesce into one job), but never longer than the max wait after the first.
LEADERBOARD_DEBOUNCE_SECONDS = env_int("LEADERBOARD_DEBOUNCE_SECONDS", 30)
LEADERBOARD_MAX_WAIT_SECONDS = env_int("LEADERBOARD_MAX_WAIT_SECONDS", 300)
LEADERBOARD_BOOTSTRAP_RESAMPLES = env_int("LEADERBOARD_BOOTSTRAP_RESAMPLES", 1000)
LEADERBOARD_BOOTSTRAP_SEED = env_int("LEADERBOARD_BOOTSTRAP_SEED", 20241122)
# A run longer than its group's run length by at most this (a clock that ran on: RE-Bench's own human
# runs overran by up to an hour) counts as one run scored at its end; a longer one is read at L.
LEADERBOARD_OVERRUN_GRACE_MINUTES = env_int("LEADERBOARD_OVERRUN_GRACE_MINUTES", 60)
# Snapshots kept besides the latest (older ones are deleted after each recompute).
LEADERBOARD_SNAPSHOTS_KEPT = env_int("LEADERBOARD_SNAPSHOTS_KEPT", 20)
