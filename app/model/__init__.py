"""The viewer's model layer: what is open and shown, without widgets.

The study session (open studies, decoded images, predictions, the engine, all filled by jobs on
worker threads), the view state (typed, observable: finding, overlay look, window,
orientation), navigation (shown image, window preset, next/previous image and series), the
heat map and window/level arithmetic, and the persisted settings. Imports QtCore at most:
never QtWidgets or pyqtgraph, so all of it is testable without a window.
"""
