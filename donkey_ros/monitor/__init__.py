"""Monitoring helpers for rviz: the pilot's-view overlay and the commanded-steering arrow."""
