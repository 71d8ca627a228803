"""The bundled model's tuning: the shipped weights load, reproduce the vectors recorded when they were trained,
name themselves in the index fingerprint, and can be turned off."""

import numpy as np
import pytest

from assistant.config import IndexSettings
from assistant.index import tuned_model
from assistant.index.embedder import fingerprint_for, load_embedder, model_label

pytestmark = pytest.mark.skipif(not tuned_model.available(), reason="no tuned weights in this checkout")


def test_the_shipped_weights_reproduce_the_vectors_recorded_at_training():
    embedder = load_embedder(IndexSettings(quantize=False))
    for probe, recorded in tuned_model.meta()["probes"].items():
        assert float(np.dot(embedder.embed_query(probe), recorded)) >= 0.999, probe


def test_the_tuning_is_part_of_the_fingerprint_and_can_be_turned_off():
    tuned, plain = IndexSettings(), IndexSettings(tuned=False)
    assert model_label(tuned) == f"{plain.model}+tuned-{tuned_model.adapter_id()}"
    assert model_label(plain) == plain.model
    assert fingerprint_for(tuned) != fingerprint_for(plain)
    assert "judge" in tuned_model.meta() and set(tuned_model.meta()["judge"]) >= {"bias", "cosine"}


def test_the_weights_are_small_and_licensed_as_the_base():
    assert (tuned_model.folder() / tuned_model.WEIGHTS).stat().st_size < 8_000_000
    assert tuned_model.meta()["licence"] == "MIT"
