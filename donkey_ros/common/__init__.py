"""Helpers shared by every node: errors, parameters, QoS, images, commands, node running."""
