#!/usr/bin/env bash
# The README quickstart's main job. Uses the real RAVDESS release when it is in data/
# (Audio_Speech_Actors_01-24.zip or its folder); otherwise a SYNTHETIC corpus, clearly named.
set -euo pipefail
TRIALS_SVM=${TRIALS_SVM:-30}
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
hpo data info "$CORPUS"
