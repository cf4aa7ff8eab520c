"""Local model files: what a GGUF holds, the library in MODELS_DIR, and whether it fits.

gguf     the header reader (bounded against crafted files), quant names
splits   split GGUF sets (`…-00001-of-00003.gguf`): names, completeness, one header
library  MODELS_DIR scanned into `LocalModel`s, with a header cache
fit      the VRAM estimate for a header and the settings, against free VRAM
"""
