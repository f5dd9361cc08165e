"""Command-line interface: a click group, one module per verb."""
