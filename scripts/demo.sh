#!/usr/bin/env bash
# The README quickstart's main job: both study kinds with six-fold speaker CV, pruning, a
# resumed study, export, report and the dashboard command.
#
# Uses the real RAVDESS release when it is in data/ (Audio_Speech_Actors_01-24.zip or its
# folder) with the shipped studies; otherwise a SYNTHETIC corpus, clearly named, and a tiny
# RANDOM-INIT Wav2Vec2 (nothing is downloaded). On the synthetic corpus the default is the
# quick demo (a few minutes on 2 cores): 16 clips a speaker instead of 60, the feature sets
# that extract in seconds (librosa, eGeMAPS; no ComParE) and 2 training epochs instead of 8
# (scripts/demo/*.toml). FULL=1 (make demo FULL=1) runs the full-size studies instead.
set -euo pipefail
# One thread per process: the tiny model's tensors are too small for a second thread to
# pay, and on a busy machine spinning torch/OpenMP threads made a w2v-tiny trial 10x slower
# (2 min 22 s of CPU against 14 s); feature extraction already runs a process per core.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
FULL=${FULL:-}
SVM_TRIALS=${SVM_TRIALS:-}
W2V_TRIALS=${W2V_TRIALS:-2}
# A prepared corpus counts as the real one only when it is not a synthetic one.
if [ -f data/ravdess/corpus.json ] && ! grep -q '"synthetic": *true' data/ravdess/corpus.json; then
  CORPUS=data/ravdess
elif [ -e data/Audio_Speech_Actors_01-24.zip ] || [ -d data/Audio_Speech_Actors_01-24 ]; then
  SRC=data/Audio_Speech_Actors_01-24.zip; [ -e "$SRC" ] || SRC=data/Audio_Speech_Actors_01-24
  hpo data prepare "$SRC" --out data/ravdess
  CORPUS=data/ravdess
fi

if [ -n "${CORPUS:-}" ]; then
  # The real corpus: the shipped studies, full size.
  SVM_STUDY=svm W2V_STUDY=w2v-tiny DB=studies/hpo.db
  SVM_TRIALS=${SVM_TRIALS:-30}
elif [ -n "$FULL" ]; then
  echo "demo: no RAVDESS release in data/; using a SYNTHETIC corpus (not real speech)"
  echo "demo: FULL size: 60 clips a speaker, ComParE among the feature sets, 8 w2v epochs"
  [ -f data/synthetic-src/hpo-synthetic.json ] || hpo data synth --out data/synthetic-src
  hpo data prepare data/synthetic-src --out data/synthetic
  CORPUS=data/synthetic SVM_STUDY=svm W2V_STUDY=w2v-tiny DB=studies/demo-synthetic.db
  SVM_TRIALS=${SVM_TRIALS:-30}
else
  echo "demo: no RAVDESS release in data/; using a SYNTHETIC corpus (not real speech)"
  echo "demo: QUICK version: 16 clips a speaker (384 clips), feature sets librosa and eGeMAPS"
  echo "      (ComParE left out: it is slow to extract), w2v-tiny trained 2 epochs (not 8)."
  echo "      The full-size demo: make demo FULL=1"
  [ -f data/synthetic-quick-src/hpo-synthetic.json ] \
    || hpo data synth --out data/synthetic-quick-src --clips-per-actor 16
  hpo data prepare data/synthetic-quick-src --out data/synthetic-quick
  # Own database: the quick studies share the full ones' names but not their definitions.
  CORPUS=data/synthetic-quick DB=studies/demo-quick.db
  SVM_STUDY=scripts/demo/svm.toml W2V_STUDY=scripts/demo/w2v-tiny.toml
  SVM_TRIALS=${SVM_TRIALS:-16}
fi
STORAGE="sqlite:///$DB"
hpo data info "$CORPUS"

# The SVM study: TPE over feature set, speaker normalisation, kernel, C, gamma, degree;
# six-fold speaker CV (no speaker on both sides); a trial clearly below the best is pruned
# after a few folds. Stopped part-way, then resumed: the second run adds the missing trials.
FIRST=$((SVM_TRIALS / 2 > 0 ? SVM_TRIALS / 2 : 1))
hpo run --study "$SVM_STUDY" --data "$CORPUS" --n-trials "$FIRST" --storage "$STORAGE"
echo "demo: resuming the svm study from $FIRST to $SVM_TRIALS finished trials"
hpo run --study "$SVM_STUDY" --data "$CORPUS" --n-trials "$SVM_TRIALS" --storage "$STORAGE"
hpo export --study svm --storage "$STORAGE"

# The Wav2Vec2 pipeline on the tiny random-init model (a GPU and the hub are needed for
# the real one: hpo run --study w2v --data data/ravdess).
hpo run --study "$W2V_STUDY" --data "$CORPUS" --n-trials "$W2V_TRIALS" --storage "$STORAGE"
hpo export --study w2v-tiny --storage "$STORAGE"

hpo status --storage "$STORAGE"
hpo report --study svm --storage "$STORAGE"
echo "demo: done. Browse with: .venv/bin/hpo dashboard --storage $STORAGE"
