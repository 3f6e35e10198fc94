"""Small helpers with no domain knowledge: atomic writes, process pools, progress bars."""
