"""What the w2v tests share."""

# Clips are cut to 3 s in the tests (the shipped studies: 6 s): half the compute of every
# step, and still well past the synthetic clips' lead-in silence. The session corpus's
# caches (conftest.w2v_corpus) are built for this length.
MAX_SECONDS = 3.0
