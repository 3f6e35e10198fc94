"""Models trained from an exported configuration, and predictions with them."""
