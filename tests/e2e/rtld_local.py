"""ggml opened the way Python's ctypes opens it (RTLD_LOCAL; llama-cpp-python loads libllama/libggml so): load
libggvk.so with ggml_backend_load and allocate a GGVK0 buffer (ggvk finds ggml_backend_buffer_init in the local
libggml-base), write and read it back.
    python3 rtld_local.py <path/libggml.so> <path/libggvk.so>"""
import ctypes
import sys

ggml = ctypes.CDLL(sys.argv[1])  # ctypes' default mode: RTLD_LOCAL
assert not hasattr(ctypes.CDLL(None), "ggml_backend_buffer_init"), "ggml-base is global: not the RTLD_LOCAL case"
vp, sz = ctypes.c_void_p, ctypes.c_size_t
for name, res, args in [
    ("ggml_backend_load", vp, [ctypes.c_char_p]),
    ("ggml_backend_reg_name", ctypes.c_char_p, [vp]),
    ("ggml_backend_dev_by_name", vp, [ctypes.c_char_p]),
    ("ggml_backend_dev_buffer_type", vp, [vp]),
    ("ggml_backend_buft_alloc_buffer", vp, [vp, sz]),
    ("ggml_backend_buffer_get_size", sz, [vp]),
    ("ggml_backend_buffer_name", ctypes.c_char_p, [vp]),
    ("ggml_backend_buffer_clear", None, [vp, ctypes.c_uint8]),
    ("ggml_backend_buffer_free", None, [vp]),
]:
    f = getattr(ggml, name)
    f.restype, f.argtypes = res, args

reg = ggml.ggml_backend_load(sys.argv[2].encode())
assert reg, "ggml_backend_load failed"
assert ggml.ggml_backend_reg_name(reg) == b"GGVK"
dev = ggml.ggml_backend_dev_by_name(b"GGVK0")
assert dev, "no GGVK0"
buf = ggml.ggml_backend_buft_alloc_buffer(ggml.ggml_backend_dev_buffer_type(dev), 1 << 20)
assert buf, "GGVK0 buffer allocation failed (ggml_backend_buffer_init not reached?)"
assert ggml.ggml_backend_buffer_get_size(buf) >= 1 << 20
assert ggml.ggml_backend_buffer_name(buf).startswith(b"GGVK0")
ggml.ggml_backend_buffer_clear(buf, 7)
ggml.ggml_backend_buffer_free(buf)
print("rtld_local.py: GGVK0 buffer of 1 MiB through ctypes (RTLD_LOCAL ggml)")
