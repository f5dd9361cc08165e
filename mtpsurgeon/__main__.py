"""`python -m mtpsurgeon` runs the command-line interface."""
from mtpsurgeon.cli.main import main

main()
