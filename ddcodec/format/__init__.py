"""The .ddc format (docs/FORMAT.md): the architecture record, the container (header, CRC), the payload and its
entropy coding, the integer side of the context models (linear context, ARM), the seeded network input and the
decode limits. Torch-free; imports nothing above it."""
