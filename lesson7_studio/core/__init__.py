"""The Lesson7 Studio library. Never imports Qt, the GUI or the CLI (DESIGN.md rule 1)."""
