"""chexnet.app: the Qt desktop viewer (shows and binds; all computation is in chexnet.inference)."""
