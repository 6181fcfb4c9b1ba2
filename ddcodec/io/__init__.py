"""The edges: images read as viewers show them, files written atomically, and the outputs of a command planned and
checked before any work. Torch-free."""
