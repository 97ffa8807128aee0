"""Machine-learning building blocks: data sets, preprocessing, (later) models and training.

The only subpackage that imports torch; every module here imports it lazily, inside the
functions that need it, so importing ``mlpipe.ml`` (or anything that names it) stays cheap.

May import: mlpipe.errors; torch, torchvision, numpy and Pillow (lazily). Never the engine.
"""
