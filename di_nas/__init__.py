"""di-nas: disturbance-immune weight sharing for neural architecture search (TensorFlow/Keras).

Importing the package must stay cheap: it imports no TensorFlow and defines no flags.
"""

__version__ = "0.1.0"
