"""The encoder: the walk of one encode (encode.py), rate control (ratecontrol.py, rate.py), the weights'
quantization (nnquant.py) and the ARM's fit and quantization (arm.py), on the training engine."""
