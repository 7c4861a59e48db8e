"""`python -m keras_lstm` runs the `keras-lstm` command line."""

import sys

from keras_lstm.app.cli import main

sys.exit(main())
