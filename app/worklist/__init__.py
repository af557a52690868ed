"""The worklist: screen folders in the background and read them in priority order.

``table_model`` holds the screened rows as a Qt table model with its filter/sort proxy,
``panel`` the widget that runs a screening as a streaming job and shows its progress, ``dock``
the main window's dock that chooses folders and opens a row for reading.
"""
