"""Fine-tuning Wav2Vec2 for emotion classification. Everything under here imports torch."""
