"""Root pytest configuration: notebooks run in their fast mode under the test suite."""

import os

os.environ.setdefault("KERAS_LSTM_FAST", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
