"""The shipped study definitions (TOML), installed as package data: see hpo.config.paths."""
