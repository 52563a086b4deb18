"""ser: speech emotion recognition as one reproducible pipeline, scored on unseen speakers."""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

__version__ = "0.1.0"
