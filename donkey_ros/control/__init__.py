"""Choosing what drives the car: the drive-mode mux."""
