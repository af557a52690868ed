"""The viewer's widgets, each bound to the model layer and knowing nothing of the window.

The image canvas (pyqtgraph: radiograph, heat map, outline of what the model saw), the
findings panel, the overlay and window controls, the small side panels (DICOM header,
thumbnails, messages) and the model package dialog.
"""
