"""Emotion corpora: one adapter per release (``formats/``), preparation into one manifest
contract, speaker folds (K or leave-one-speaker-out), and synthetic stand-ins."""
