"""Running studies: storage, locks, workers, provenance, the fold loop, crashed trials."""
