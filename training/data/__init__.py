"""Training data: label files, data sets split by patient, the preprocessed image cache,
training-split resampling and synthetic chest phantoms.

Entry points: :func:`.dataset.load_dataset` (-> :class:`.dataset.Splits`),
:func:`.labels.read_label_file`, :func:`.cache.build_cache`, :class:`.resample.ResamplingSampler`,
:func:`.phantom.write_phantom_dataset` (``python -m chexnet.training.data.phantom``).
"""
