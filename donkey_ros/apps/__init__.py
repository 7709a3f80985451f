"""The application layer: commands and experiments composed from the domain packages."""
