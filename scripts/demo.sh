#!/usr/bin/env bash
# The README quickstart's main job. Uses the real RAVDESS release when it is in data/
# (Audio_Speech_Actors_01-24.zip or its folder); otherwise a SYNTHETIC corpus, clearly named,
# and a tiny RANDOM-INIT Wav2Vec2 (nothing is downloaded).
set -euo pipefail
SVM_TRIALS=${SVM_TRIALS:-30}
W2V_TRIALS=${W2V_TRIALS:-2}
if [ -f data/ravdess/corpus.json ]; then
  CORPUS=data/ravdess
elif [ -e data/Audio_Speech_Actors_01-24.zip ] || [ -d data/Audio_Speech_Actors_01-24 ]; then
  SRC=data/Audio_Speech_Actors_01-24.zip; [ -e "$SRC" ] || SRC=data/Audio_Speech_Actors_01-24
  hpo data prepare "$SRC" --out data/ravdess
  CORPUS=data/ravdess
else
  echo "demo: no RAVDESS release in data/; using a SYNTHETIC corpus (not real speech)"
  [ -f data/synthetic-src/hpo-synthetic.json ] || hpo data synth --out data/synthetic-src
  hpo data prepare data/synthetic-src --out data/synthetic
  CORPUS=data/synthetic
fi
if [ "$CORPUS" = data/synthetic ]; then DB=studies/demo-synthetic.db; else DB=studies/hpo.db; fi
STORAGE="sqlite:///$DB"
hpo data info "$CORPUS"

# The SVM study: TPE over kernel/C/gamma/degree, six-fold actor CV, resumable.
hpo run --study svm --data "$CORPUS" --n-trials "$SVM_TRIALS" --storage "$STORAGE"
hpo export --study svm --storage "$STORAGE"

# The Wav2Vec2 pipeline on the tiny random-init model (a GPU and the hub are needed for
# the real one: hpo run --study w2v --data data/ravdess).
hpo run --study w2v-tiny --data "$CORPUS" --n-trials "$W2V_TRIALS" --storage "$STORAGE"
hpo export --study w2v-tiny --storage "$STORAGE"

hpo status --storage "$STORAGE"
hpo report --study svm --storage "$STORAGE"
echo "demo: done. Browse with: .venv/bin/hpo dashboard --storage $STORAGE"
