#!/usr/bin/env bash
# Wheel smoke test: build the wheel, install it into a fresh virtual environment and, from an empty folder, run
# what a user runs after `pip install srfer_plugin`: the srfer command, tiny data, classifier pre-training and an
# SR-FER training by shipped config names (srfer::), BasicSR's own entry point, inference and the quick demo.
# Everything goes to a temporary folder (kept with KEEP_SMOKE=1); nothing is written into the clone.
#
#   bash .ci/wheel_smoke.sh [SOURCE_DIR]      # default: this clone
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="${1:-$ROOT}"
PYTHON="${PYTHON:-python}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/srfer_wheel_smoke.XXXXXX")"
[ "${KEEP_SMOKE:-0}" = 1 ] || trap 'rm -rf "$TMP"' EXIT
start=$SECONDS
step() { echo "[wheel smoke $((SECONDS - start))s] $*"; }
OUTPUT_FOLDERS=(experiments results datasets tb_logger work_dirs build dist)
before="$(cd "$SRC" && ls -d "${OUTPUT_FOLDERS[@]}" 2>/dev/null || true)"

step "build the wheel from a copy of $SRC (tracked and new files, as they would be committed)"
mkdir -p "$TMP/src" "$TMP/wheels"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$SRC" && git ls-files -z -co --exclude-standard | tar --null --ignore-failed-read -T - -cf -) |
        tar -C "$TMP/src" -xf -
else
    cp -a "$SRC/." "$TMP/src/"
fi
"$PYTHON" -m pip wheel --no-deps -q -w "$TMP/wheels" "$TMP/src"
WHEEL="$(ls "$TMP"/wheels/srfer_plugin-*.whl)"

step "install $(basename "$WHEEL") and its dependencies into a new virtual environment"
"$PYTHON" -m venv "$TMP/venv"
VENV="$TMP/venv/bin"
# --no-compile: each module is compiled when first imported (most of torch never is)
"$VENV/python" -m pip install -q --no-compile "$WHEEL" >"$TMP/install.log" 2>&1 || { tail -40 "$TMP/install.log"; exit 1; }

mkdir "$TMP/work"
cd "$TMP/work"
export PATH="$VENV:$PATH" PYTHONWARNINGS=ignore OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
export SRFER_CACHE_DIR="$TMP/cache" MPLCONFIGDIR="$TMP/mpl" TORCH_HOME="$TMP/torch"
SITE="$("$VENV/python" -c 'import os, sysconfig; print(os.path.realpath(sysconfig.get_path("purelib")))')"
case "$("$VENV/python" -c 'import os, srfer_plugin; print(os.path.realpath(srfer_plugin.__file__))')" in
    "$SITE"/*) ;;
    *) echo "srfer_plugin is not imported from the wheel" >&2; exit 1 ;;
esac

step "srfer list-options fer"
srfer list-options fer >names.txt
grep -qx 'srfer::fer/resnet18slim_fer7_demo.py' names.txt

step "tiny data: srfer generate-synthetic-faces"
srfer generate-synthetic-faces --out data --size 32 --num-train 2 --num-val 1 --num-test 1

step "classifier: srfer train-fer srfer::fer/resnet18slim_fer7_demo.py (_base_ chain from the wheel)"
srfer train-fer srfer::fer/resnet18slim_fer7_demo.py --data-root data --work-dir fer --device cpu --max-epochs 1 \
    --cfg-options train_dataloader.batch_size=4 >fer.log 2>&1 || { tail -40 fer.log; exit 1; }
test -f fer/fer_final.pth

cat >tiny.yml <<EOF
name: smoke_srfer
model_type: SRFERModel
scale: 4
num_gpu: 0
manual_seed: 0
datasets:
  train:
    name: smoke_train
    type: PairedFERDataset
    dataroot_gt: data
    meta_info_file: data/meta_info_train.txt
    io_backend: {type: disk}
    use_hflip: true
    num_worker_per_gpu: 0
    batch_size_per_gpu: 4
    dataset_enlarge_ratio: 1
    prefetch_mode: ~
  val:
    name: smoke_val
    type: PairedFERDataset
    dataroot_gt: data
    meta_info_file: data/meta_info_val.txt
    io_backend: {type: disk}
network_g: {type: RCAN, num_in_ch: 3, num_out_ch: 3, num_feat: 8, num_group: 1, num_block: 1, squeeze_factor: 4,
            upscale: 4, res_scale: 1, img_range: 255., rgb_mean: [0.4488, 0.4371, 0.4040]}
network_fer:
  type: MMPretrainFER
  config: srfer::fer/resnet18slim_fer7_demo.py
  checkpoint: fer/fer_final.pth
  num_classes: 7
path: {pretrain_network_g: ~, strict_load_g: true, resume_state: ~}
train:
  ema_decay: 0
  optim_g: {type: Adam, lr: !!float 1e-3, betas: [0.9, 0.99]}
  scheduler: {type: MultiStepLR, milestones: [100], gamma: 0.5}
  total_iter: 2
  warmup_iter: -1
  pixel_opt: {type: L1Loss, loss_weight: 1.0, reduction: mean}
  attention_opt: {type: AttentionConsistencyLoss, loss_weight: 0.1, p: 2}
  prediction_opt: {type: PredictionConsistencyLoss, loss_weight: 0.001, temperature: 4.0}
val:
  val_freq: 2
  save_img: false
  metrics: {psnr: {type: calculate_psnr, crop_border: 4, test_y_channel: true}}
logger: {print_freq: 1, save_checkpoint_freq: 2, use_tb_logger: true, wandb: {project: ~, resume_id: ~}}
EOF

step "SR-FER training: srfer-train -opt tiny.yml (network_fer.config: srfer::..., num_gpu: 0)"
srfer-train -opt tiny.yml >train.log 2>&1 || { tail -40 train.log; exit 1; }
test -f experiments/smoke_srfer/models/net_g_latest.pth

step "BasicSR's own entry point: python -m basicsr.train writes here, not into site-packages"
sed 's/^name: smoke_srfer$/name: smoke_basicsr/; s/total_iter: 2$/total_iter: 1/' tiny.yml >basicsr.yml
python -m basicsr.train -opt basicsr.yml >basicsr.log 2>&1 || { tail -40 basicsr.log; exit 1; }
test -f experiments/smoke_basicsr/models/net_g_latest.pth && test -d tb_logger/smoke_basicsr
for folder in experiments tb_logger results; do
    if [ -e "$SITE/$folder" ]; then echo "python -m basicsr.train wrote $SITE/$folder" >&2; exit 1; fi
done

step "inference: srfer-infer on the test faces"
srfer-infer -i 'data/test/*/*.png' -o infer --opt tiny.yml --sr-model experiments/smoke_srfer/models/net_g_latest.pth \
    --no-progress >infer.log 2>&1 || { tail -40 infer.log; exit 1; }
test -s infer/predictions.csv

step "the quick demo: srfer-demo --quick"
srfer-demo --quick --out demo >demo.log 2>&1 || { tail -60 demo.log; exit 1; }
test -s demo/report.md && test -s demo/faces.png
grep '^|' demo/report.md

after="$(cd "$SRC" && ls -d "${OUTPUT_FOLDERS[@]}" 2>/dev/null || true)"
if [ "$before" != "$after" ]; then echo "the smoke test wrote into $SRC: $after" >&2; exit 1; fi
step "passed"
