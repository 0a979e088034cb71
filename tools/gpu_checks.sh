#!/usr/bin/env bash
# Every GPU measurement in one run: embedding throughput, neighbour search / reshape at scale and
# trainer speed. Usage: tools/gpu_checks.sh OUT_DIR [--smoke]
# Each script writes its figures as JSON into OUT_DIR; a failing script does not stop the others.
# Packages the GPU machine may lack (open_clip_torch, safetensors, ...) can be installed first from
# a folder of wheels: WHEELS=path/to/wheels tools/gpu_checks.sh OUT_DIR
set -u -o pipefail
out=${1:?usage: tools/gpu_checks.sh OUT_DIR [--smoke]}
shift
mkdir -p "$out"
cd "$(dirname "$0")/.."
if [ -n "${WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/curate-site "$WHEELS"/*.whl \
    && export PYTHONPATH="/tmp/curate-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
status=0
for check in gpu_embed gpu_reshape gpu_train; do
  echo "== $check"
  start=$(date +%s)
  python3 "tools/$check.py" "$out" "$@" 2>&1 | tee "$out/$check.log" || status=1
  echo "== $check took $(( $(date +%s) - start )) s"
done
exit $status
