"""RAVDESS corpus: file names, preparation, manifest, actor folds and a synthetic stand-in."""
