"""Prediction: new texts classified with a run, a saved model or an export.

- ``predictor``: ``predict``, ``predict_stream`` and ``load_predictor`` for any of them;
- ``keras_model``: a saved Keras classifier (and the transformers pipeline on it);
- ``saved_model``: an export, with TensorFlow alone, as TensorFlow Serving would answer;
- ``results``: what each text gets back (label and scores, or a multi-label model's labels);
- ``chart``: one text's probabilities as the book's bar chart.
"""

from tfemotion.prediction.chart import plot_probabilities
from tfemotion.prediction.keras_model import load_classifier, load_pipeline, predict_proba
from tfemotion.prediction.predictor import load_predictor, predict, predict_stream
from tfemotion.prediction.saved_model import ExportPredictor

__all__ = ["ExportPredictor", "load_classifier", "load_pipeline", "load_predictor",
           "plot_probabilities", "predict", "predict_proba", "predict_stream"]
