"""The built-in components, each module an ordinary plugin (see pyproject's entry points)."""
