#!/usr/bin/env bash
# The rare-concept study of issue 35: generators trained with a limited exposure to the rare classes, then the
# long-tail benchmark (corrected analysis, declared contrasts, >= 10 replicates, k in {2, 5, 10}) on each.
#
#   nohup bash scripts/rare_study.sh > runs/rare/study.out 2>&1 &     # progress: tail -f runs/rare/study.log
#
# Resumable: a finished generator (testbed.json) or benchmark (run.json completed) is skipped, an unfinished
# training is continued with --resume (the same bytes as an uninterrupted one), an unfinished benchmark too
# (`evaluate --resume`: its finished replicates are read back, the same numbers as an uninterrupted run).
# Digits: scikit-learn's 8x8 digits (python scripts/digits_npz.py; not mirror-symmetric: no flips anywhere),
# exposures 0, 5, 20 and full for the tail classes (the three smallest) and for a second set of classes (1, 4, 7:
# the other class order); Fashion-MNIST (the Debian package dataset-fashion-mnist): exposures 0, 5 and 20 of its tail
# classes (sneaker, bag, ankle boot). The benchmark ranks the exposure-limited classes last, so they are its
# few-shot classes; imbalance = head / k, so each few-shot class has exactly its k references.
# Exposure 0: the class embedding was never trained, so the /class arms of those classes draw from an untrained
# label; the /unconditional arms are the regime of the paper.
# RARE_STUDY_TINY=1: a tiny recipe and --quick-sized benchmark (minutes) that shows the pipeline works.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${PY:-.venv/bin/python}
SS=${SS:-.venv/bin/seedspace}
ROOT=${RARE_STUDY_ROOT:-runs/rare}
DIGITS=${DIGITS_NPZ:-data/digits.npz}
mkdir -p "$ROOT"
LOG="$ROOT/study.log"
log() { echo "$(date '+%F %T') $*" | tee -a "$LOG"; }

if [[ "${RARE_STUDY_TINY:-0}" == 1 ]]; then
  DIGITS_TRAIN=(--image-size 8 --channels 8,16 --batch-size 8 --steps 20 --classifier-epochs 1 --fewshot 3
                --test-references 12 --imbalance 4 --skip-encoder --skip-calibrate --threads 1)
  ARMS=oversample,random,paths:nao,seedselect:nao,seedselect:random,generator-train,oracle
  FASHION_ARMS=$ARMS
  BENCH=(--quick --lt-doses fill --lt-test-per-class 4 --lt-seedselect-steps 1)
  EXPOSURES=(0); SETS=(tail); SHOTS=(2); FASHION=()
else
  DIGITS_TRAIN=(--image-size 16 --imbalance 1 --fewshot 8 --test-references 100 --steps 3000 --threads 2)
  # 100 test references per class: 40 test images, 60 unseen by any generator (the oracle and references)
  # seedselect:nao: SeedSelect from the NAO centroid (the paper's pipeline, 3 steps); generator-train: as many real
  # images the generator was trained on (skipped with a note at exposure 0). The arms of every committed result;
  # paths:slerp and seedselect:random (SeedSelect from random seeds) are further arms for RARE_ARMS
  ARMS=oversample,random,paths:nao,centroid:nao,seedselect:nao,generator-train,oracle
  FASHION_ARMS=$ARMS
  BENCH=(--lt-test-per-class 40 --lt-replicates 10 --threads 2)
  EXPOSURES=(0 5 20 full); SETS=(tail permuted); SHOTS=(2 5 10); FASHION=(0 5 20)
fi
# the head count (every class filled up to it; RARE_HEAD overrides): the synthesis cost grows with it, and the
# centroid arm's distinct seeds from k = 5 references (26 subsets of >= 2) must cover head - k; every committed
# result used 30
HEAD=${RARE_HEAD:-$([[ "${RARE_STUDY_TINY:-0}" == 1 ]] && echo 8 || echo 30)}
# a part of the grid first (e.g. RARE_SETS=tail RARE_EXPOSURES="0 5 full" RARE_SHOTS=5 RARE_FASHION="", or
# RARE_SETS="" RARE_FASHION=0 RARE_SHOTS=10 for Fashion-MNIST alone; an empty list runs none): the rest
# is added by running again without them (finished steps are skipped); RARE_ARMS / RARE_FASHION_ARMS: other arm
# lists, with RARE_SUFFIX naming their benchmark folders apart (bench-...-k5$RARE_SUFFIX: a finished benchmark is
# never rerun) and RARE_EXTRA_CONTRASTS ('A - B @ group, treatment; ...') declared beside each arm's three, e.g.
#   RARE_ARMS=oversample,random,paths:nao,paths:slerp,seedselect:nao,seedselect:random RARE_SUFFIX=-starts \
#   RARE_EXTRA_CONTRASTS='paths:nao/unconditional - paths:slerp/unconditional @ few, ce;
#                         seedselect:nao/unconditional - seedselect:random/unconditional @ few, ce'
ARMS=${RARE_ARMS:-$ARMS}
SUFFIX=${RARE_SUFFIX:-}
FASHION_ARMS=${RARE_FASHION_ARMS:-$FASHION_ARMS}
read -r -a EXPOSURES <<< "${RARE_EXPOSURES:-${EXPOSURES[*]}}"
read -r -a SETS <<< "${RARE_SETS-${SETS[*]}}"
read -r -a SHOTS <<< "${RARE_SHOTS:-${SHOTS[*]}}"
read -r -a FASHION <<< "${RARE_FASHION-${FASHION[*]}}"

train() {  # train OUT ARGS...: a new generator, or the unfinished one in OUT continued
  local out=$1; shift
  if [[ -f "$out/testbed.json" ]]; then log "skip $out (trained)"; return; fi
  local resume=()
  [[ -f "$out/training.json" ]] && resume=(--resume)
  log "train $out $*"
  "$SS" testbed train --out "$out" --quiet "${resume[@]}" "$@" >> "$LOG" 2>&1
  log "done $out"
}

status_of() {  # status_of RUN_DIR: its run.json's status (none without one)
  if [[ -f "$1/run.json" ]]; then "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["status"])' "$1/run.json"
  else echo none; fi
}

bench() {  # bench MODEL OUT HEAD K ARGS...: the long-tail benchmark with k references (imbalance head / k)
  local model=$1 out=$2 head=$3 k=$4; shift 4
  case $(status_of "$out") in
    completed) log "skip $out (done)"; return ;;
    none) ;;
    *) log "resume $out"  # its finished replicates are read back
       "$SS" evaluate --resume "$out" >> "$LOG" 2>&1
       log "done $out"; return ;;
  esac
  log "benchmark $out"
  # not --quiet: one line per replicate and arm goes to the log (the progress of a run of hours)
  "$SS" evaluate --experiments longtail --model "$model" --out "$out" --lt-shots "$k" \
    --lt-imbalance "$(( head / k ))" "$@" >> "$LOG" 2>&1
  log "done $out"
}

exposure_of() {  # exposure_of SET E: the --exposure value of a class set and an exposure
  if [[ $1 == tail ]]; then echo "$2"; else echo "1=$2,4=$2,7=$2"; fi
}

contrasts_of() {  # contrasts_of ARMS CONDITIONS K: the declared contrasts (Holm-adjusted together), on the few-shot
  # classes with cross-entropy on the filled (balanced) set: each reference-based synthetic arm against oversampling
  # the references, against random seeds with the label, and against the real long-tailed data with logit adjustment
  # (the standard rebalancing of the real data: does synthetic data add to it?)
  local arms=$1 conditions=$2 k=$3 out=() arm c
  IFS=, read -r -a arms <<< "$arms"
  IFS=, read -r -a conditions <<< "$conditions"
  for arm in "${arms[@]}"; do
    case $arm in oversample|random|oracle|generator-train) continue ;; esac
    # centroids of subsets of >= 2 of k references: 2^k - k - 1 distinct seeds, too few below the head count (the
    # benchmark runs such an arm with a note, but a declared contrast may not name it)
    if [[ $arm == centroid:* ]] && (( (1 << k) - k - 1 < HEAD - k )); then continue; fi
    for c in "${conditions[@]}"; do
      out+=("$arm/$c - oversample @ few, ce" "$arm/$c - random @ few, ce" "$arm/$c - real+la @ few, ce")
    done
  done
  [[ -n "${RARE_EXTRA_CONTRASTS:-}" ]] && out+=("$RARE_EXTRA_CONTRASTS")
  local IFS=";"; echo "${out[*]}"
}

conditions_of() {  # conditions_of E: at exposure 0 the label of the rare classes was never trained, so the arms
  # that start from the references run with the null condition only (the paper's regime; 'random' keeps the label
  # as the baseline that shows it carries nothing); elsewhere with the label and without it
  if [[ $1 == 0 ]]; then echo unconditional; else echo class,unconditional; fi
}

[[ -f "$DIGITS" ]] || "$PY" scripts/digits_npz.py --out "$DIGITS" | tee -a "$LOG"
for set in "${SETS[@]}"; do
  for e in "${EXPOSURES[@]}"; do
    train "$ROOT/digits-$set-e$e" --data "$DIGITS" --exposure "$(exposure_of "$set" "$e")" "${DIGITS_TRAIN[@]}"
  done
done
for f in "${FASHION[@]}"; do
  # the digits' cost: a 16x16 UNet and 3000 steps (the embedded Fashion testbed: 32x32, 4000 steps, ~4x the time)
  train "$ROOT/fashion-e$f" --exposure "$f" --image-size 16 --steps 3000 --threads 2
done
for set in "${SETS[@]}"; do
  for e in "${EXPOSURES[@]}"; do
    for k in "${SHOTS[@]}"; do
      bench "$ROOT/digits-$set-e$e" "$ROOT/bench-digits-$set-e$e-k$k$SUFFIX" "$HEAD" "$k" "${BENCH[@]}" --lt-head "$HEAD" \
        --lt-conditions "$(conditions_of "$e")" --lt-arms "$ARMS" \
        --lt-contrasts "$(contrasts_of "$ARMS" "$(conditions_of "$e")" "$k")"
    done
  done
done
for f in "${FASHION[@]}"; do
  for k in "${SHOTS[@]}"; do
    bench "$ROOT/fashion-e$f" "$ROOT/bench-fashion-e$f-k$k$SUFFIX" "$HEAD" "$k" --lt-test-per-class 300 --lt-head "$HEAD" \
      --lt-replicates 10 --threads 2 --lt-conditions "$(conditions_of "$f")" --lt-arms "$FASHION_ARMS" \
      --lt-contrasts "$(contrasts_of "$FASHION_ARMS" "$(conditions_of "$f")" "$k")"
  done
done
log "study complete"
