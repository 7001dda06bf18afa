#!/usr/bin/env bash
# Every measured number in the documentation (docs/), in one sequential run on this machine (2 CPU cores):
# package the trained testbed, then the testbed acceptance report, the evaluation, the SeedSelect report and
# the geometry benchmark. Logs go to logs/reports.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p reports
echo "== machine: $(uname -srm), $(nproc) cores, $(date -u)"
$PY scripts/package_testbed.py runs/testbed  # a finished `seedspace testbed train --out runs/testbed --steps 4000` folder
/usr/bin/time -f "testbed report: %e s" $PY scripts/report_testbed.py --out reports/testbed --per-class 50 --norm-per-group 30 --threads 2 --update docs/models.md --update seedspace/testbed/weights/MODEL_CARD.md
/usr/bin/time -f "evaluate: %e s" .venv/bin/seedspace evaluate --out reports/evaluate --threads 2 --update-results docs/results.md --quiet
/usr/bin/time -f "evaluate (flow testbed): %e s" .venv/bin/seedspace evaluate --model testbed-flow --experiments norm,interpolation,centroid,paired --classes 0,3,5,7,9 --out reports/evaluate-flow --threads 2 --quiet
/usr/bin/time -f "inversion report: %e s" $PY scripts/report_inversion.py --model testbed --model testbed-flow --per-class 5 --threads 2 --out reports/inversion --update docs/results.md
/usr/bin/time -f "seedselect report (unconditional): %e s" $PY scripts/report_seedselect.py --unconditional --out reports/seedselect/unconditional --threads 2 --runs 6 --steps 30
/usr/bin/time -f "seedselect report (conditional): %e s" $PY scripts/report_seedselect.py --out reports/seedselect/conditional --threads 2 --runs 4 --steps 30
/usr/bin/time -f "seedselect report (nao vs cog): %e s" $PY scripts/report_seedselect.py --unconditional --inits nao-centroid cog-centroid --out reports/seedselect/nao_vs_cog --threads 2 --runs 20 --steps 30
/usr/bin/time -f "geometry benchmark: %e s" $PY benchmarks/bench_geometry.py --threads 2 > reports/bench_geometry.md
$PY benchmarks/bench_geometry.py --quick --threads 2 --repeats 3 > reports/bench_geometry_quick.md
$PY benchmarks/bench_geometry.py --only blend --threads 2 > reports/bench_blend.md
echo "== done $(date -u)"
