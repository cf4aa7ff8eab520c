"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from stack.models.header import GgufHeader
from tests.support.real_shapes import GEMMA_3_4B, LLAMA_3_1_8B, LLAMA_3_2_3B, Q, write_sparse_model


@pytest.fixture(scope="session")
def real_headers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GgufHeader]:
    """Headers of sparse files shaped like real Q4_K_M releases (written once a session).

    ``3b`` is the file the GPU measurements used (1.92 GB: its tied token_embd was Q4_K);
    ``3b-llama-quantize`` is what llama-quantize writes for that model (Q6_K, 2.02 GB).
    """
    from stack.models.gguf import read_header

    folder = tmp_path_factory.mktemp("real-shapes")
    return {
        "8b": read_header(write_sparse_model(folder / "8b.gguf", LLAMA_3_1_8B)),
        "3b": read_header(
            write_sparse_model(folder / "3b.gguf", LLAMA_3_2_3B, token_embd_type=Q.Q4_K)
        ),
        "3b-llama-quantize": read_header(write_sparse_model(folder / "3b-q.gguf", LLAMA_3_2_3B)),
        "gemma": read_header(write_sparse_model(folder / "gemma.gguf", GEMMA_3_4B)),
    }
