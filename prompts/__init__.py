"""Prompt templates as files, read with importlib.resources."""
