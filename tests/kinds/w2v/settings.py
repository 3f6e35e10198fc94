"""What the w2v tests share."""

# Clips are cut to 3 s in the tests (the shipped studies: 6 s): half the compute of every
# step, and still well past the synthetic clips' lead-in silence. The session corpus's
# caches (conftest.w2v_corpus) are built for this length.
MAX_SECONDS = 3.0

# The shipped w2v-probe study searches wav2vec2-base's 13 layer outputs; the tiny backbone
# has 3 (2 transformer layers), and a layer a backbone lacks is refused before any trial.
TINY_LAYERS = {"probe_layer": {"type": "categorical", "choices": ["weighted", 0, 1, 2]}}
