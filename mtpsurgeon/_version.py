"""The package version, importable from any layer without importing the package facade."""

__version__ = "0.2.0"
