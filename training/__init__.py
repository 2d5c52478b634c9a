"""Recipes that build what homefire ships (run from the repository root; never installed)."""
