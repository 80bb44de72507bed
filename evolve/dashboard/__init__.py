"""Read-only views of a run: the data layer (`data`), shared by the CLI inspection commands and
the live view, and the Textual dashboard (`app`, imported only when the dashboard starts so the
CLI stays quick)."""
