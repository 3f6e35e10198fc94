"""The frozen-backbone probe (``[model] finetune = false``): the layer cache, the head and
its training loop, the saved model."""
