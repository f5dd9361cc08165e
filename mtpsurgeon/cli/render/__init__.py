"""Rendering: rich views for people, JSON for scripts, progress bars."""
