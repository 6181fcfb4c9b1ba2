"""The networks a .ddc describes, in torch: the Deep Decoder's forward pass (model.py), the synthesis of format 4
(synthesis.py) and the fitting loop's fast kernels (kernels.py). Shared by the torch decoder, the encoder and
restoration."""
