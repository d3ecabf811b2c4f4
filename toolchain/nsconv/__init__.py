# SPDX-License-Identifier: Apache-2.0
"""nsconv: Dynamic nsNet2 noise suppression from trained model to bit-exact Cortex-M C."""

import os

# TensorFlow's C++ start-up chatter says nothing a user of nsconv can act on.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
