"""Should this prompt be answered? The on-device prompt guard (ONNX classifier) lands here."""
