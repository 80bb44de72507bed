"""Built-in problem `serving`: dispatch (and migrate) requests across LLM serving instances."""
