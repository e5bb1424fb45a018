#!/usr/bin/env bash
# GPU readiness in one script: one JSON line per check, about 5 minutes on one GPU.
#   bash scripts/gpu_check.sh            (from the repository root, after make install)
# Without a CUDA device it prints one line saying so and exits 0.
# Checks: the device tests (tests/device: the agent on CUDA equals the CPU; a Box-World PPO
# iteration without hidden host syncs), the layer benchmarks on the GPU (bench_layers.py
# --device cuda), and, with two GPUs or more, a 2-process DDP fit of the shipped Box-World config.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3

gpus=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)" 2>/dev/null || echo 0)
if [ "${gpus:-0}" -lt 1 ]; then
  echo '{"check": "gpu", "status": "skipped", "reason": "no CUDA device (torch.cuda.is_available() is False)"}'
  exit 0
fi
status=0
check() {  # check NAME COMMAND...: run it, one JSON line with its exit code and time
  local name=$1; shift
  local start=$SECONDS
  if "$@" > "/tmp/gpu_check_$name.log" 2>&1; then rc=0; else rc=$?; status=1; fi
  tail_line=$(tail -n 1 "/tmp/gpu_check_$name.log" | tr -d '"\\' | cut -c1-200)
  echo "{\"check\": \"$name\", \"gpus\": $gpus, \"rc\": $rc, \"seconds\": $((SECONDS - start)), \"last_line\": \"$tail_line\"}"
}
check device_tests "$PY" -m pytest -q tests/device -p no:cacheprovider
check bench_layers "$PY" scripts/bench_layers.py --device cuda --repeats 5
if [ "$gpus" -ge 2 ]; then
  check ddp_fit "$PY" -m graphrl fit --config configs/boxworld/ppo_attention.yaml \
    --trainer.accelerator=gpu --trainer.devices=2 --trainer.strategy=ddp \
    --model.init_args.total_timesteps=65536 --trainer.callbacks=[] \
    --trainer.default_root_dir=/tmp/gpu_check_ddp
fi
exit $status
