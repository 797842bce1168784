"""Mobile export of HarmonyNet: TFLite (through TensorFlow) and Core ML (through StableHLO).

Run `python -m export --checkpoint PATH --out DIR` from the repository root; see
docs/mobile.md. Importing this package loads neither TensorFlow nor coremltools: the
converters load in `export.tflite` and `export.coreml` only.
"""
