"""The application layer: commands that compose the domain packages (never imported by them)."""
