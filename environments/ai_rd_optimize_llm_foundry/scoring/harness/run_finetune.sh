#!/bin/bash
# ai_rd_optimize_llm_foundry's harness, the timed step: `bash finetune.sh` in the workspace.
#
# Runs in a harness instance of the attempt's sandbox (as the attempt's user, the live workspace as
# the working folder, no network, none of the scorer's files); the workstation times the instance.
# Usage: run_finetune.sh OUTPUT (the checkpoint's path in the workspace, e.g. trained_model/model.pth).
# Its folder goes first, as the scorer always did: a result left from an earlier run never counts.
# $PYTHON (the sandbox's interpreter, with torch) comes from the scorer's request.
set -u
output_folder=$(dirname -- "$1")
if [ "$output_folder" != "." ] && [ "$output_folder" != "/" ]; then
    rm -rf -- "$output_folder"
fi
if [ ! -f finetune.sh ]; then
    echo "rebench-harness: no finetune.sh in the workspace" >&2
    exit 127
fi
exec /bin/bash finetune.sh
