"""Format I/O: .tflite, .litertlm and safetensors readers and writers."""
