"""The public weight layouts ``chexnet import`` reads. Torch-free, so the ``chexnet`` command
line can offer them as choices without loading torch."""

FORMATS = ("arnoweng", "reproduce-chexnet", "torchxrayvision", "torchvision")
#: Backbones of ``--format torchvision`` (VGG-16 is refused: its head is not GAP + linear).
TORCHVISION_ARCHS = ("densenet121", "resnet101")
