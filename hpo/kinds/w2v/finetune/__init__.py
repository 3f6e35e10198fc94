"""Fine-tuning (``[model] finetune = true``): the Trainer, the CNN cache, the saved model."""
