"""The public weight layouts ``chexnet import`` reads. Torch-free, so the ``chexnet`` command
line can offer them as choices without loading torch."""

FORMATS = ("arnoweng", "reproduce-chexnet", "torchxrayvision", "torchvision")
#: Backbones of ``--format torchvision`` (vgg16 is listed to be refused with the reason).
TORCHVISION_ARCHS = ("densenet121", "resnet101", "vgg16")
