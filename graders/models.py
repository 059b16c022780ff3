"""Turning work into numbers: score logs, normalisation and leaderboards (the grading issue fills this in)."""
