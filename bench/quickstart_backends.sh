#!/bin/bash
# The quickstart's stages after SFT (the only ones a policy backend changes), once with each backend,
# timed. Needs a finished `rro run configs/quickstart.toml` (its experts and SFT stages are reused)
# and vLLM installed in this environment; leaves runs/quickstart as it found it.
#
#   bash bench/quickstart_backends.sh        # prints the wall time and every stage's seconds per backend
set -euo pipefail
run=runs/quickstart
backup=runs/quickstart.bench-backup
[ -f $run/stages/sft.json ] || { echo "run rro run configs/quickstart.toml first"; exit 1; }
[ -d $backup ] || cp -a $run $backup
vllm_config=$(mktemp --suffix .toml)
sed -e 's/^\[eval\]$/[eval]\npolicy_backend = "vllm"/' -e 's/^\[explore\]$/[explore]\npolicy_backend = "vllm"/' \
    configs/quickstart.toml > $vllm_config
for backend in hf vllm; do
  rm -rf $run && cp -a $backup $run
  rm -rf $run/stages/{eval-sft,explore-rising-1,dpo-rising-1,eval-rising-1}.json $run/{eval-sft,rising,results.json,report}
  config=configs/quickstart.toml; [ $backend = vllm ] && config=$vllm_config
  start=$(date +%s)
  rro run $config > /dev/null
  echo "$backend: $(( $(date +%s) - start )) s after SFT"
  for stage in eval-sft explore-rising-1 dpo-rising-1 eval-rising-1; do
    echo "  $stage $(python -c "import json; print(json.load(open('$run/stages/$stage.json'))['seconds'])") s"
  done
done
rm -rf $run && mv $backup $run && rm -f $vllm_config
