"""Study files: load and validate (typed, frozen), search spaces, default paths."""
