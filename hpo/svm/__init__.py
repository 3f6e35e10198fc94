"""The classical baseline: librosa features, a scaler and an SVC."""
