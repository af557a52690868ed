"""chexnet.app: the Qt desktop viewer (shows and binds; all computation is in chexnet.inference).

``model`` holds the state without widgets, ``widgets`` the reusable widgets, ``worklist`` the
screening dock; at this level, ``main`` is the ``chexnet-viewer`` command, ``main_window`` binds
the session to the widgets, ``image_view`` draws the shown image, ``commands`` and ``menus``
hold the menu commands, ``window_layout`` the docks, and ``workers`` the background jobs.
"""
