# SPDX-License-Identifier: Apache-2.0
"""nsconv: Dynamic nsNet2 noise suppression from trained model to bit-exact Cortex-M C."""

__version__ = "0.1.0"
