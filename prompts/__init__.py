"""Prompt templates (Jinja2 text files); `evolve/prompting.py` renders them."""
