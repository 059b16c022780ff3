#!/bin/sh
# The expert's side of grading_test_harness: run their program, and try to read the scorer's files.
cat "$1" > /run/rebench/out/scorer.txt 2>/run/rebench/out/scorer-error.txt
sh /home/agent/program.sh > /run/rebench/out/answer.txt
ln -s /etc/hostname /run/rebench/out/link.txt
