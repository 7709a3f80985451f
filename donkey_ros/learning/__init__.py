"""Learning to drive: training on recorded bags, exporting TFLite models, the pilot that runs them.

Modules that import TensorFlow (models, pipeline, train, export) are only imported by the training
commands; ``metadata`` and ``inference`` use LiteRT alone, so the pilot starts fast on a Pi.
"""
