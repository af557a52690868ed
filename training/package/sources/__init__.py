"""One module per public weights layout ``chexnet import`` reads (arnoweng/CheXNet,
reproduce-chexnet, torchxrayvision, plain torchvision), the helpers they share (:mod:`.common`)
and torchxrayvision's published release facts (:mod:`.xrv_releases`, torch-free)."""
