"""ser: speech emotion recognition as one reproducible pipeline, scored on unseen speakers."""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

__version__ = "0.1.0"
# one fixed colour per emotion, the same in every figure
EMOTION_COLORS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#ffbf00",
                  "neutral": "#7f7f7f", "sad": "#1f77b4", "surprise": "#2ca02c"}
